/* SPDX-License-Identifier: Apache-2.0
 *
 * manverify native ES256 (ECDSA P-256 / SHA-256) verification and the SHAKEN token scanner: the
 * ABI manverify uses, over byte buffers, implemented by mv_native.c. Nothing else is exported
 * (the test hooks of mv_native.h exist only in test builds, -DMV_TEST_HOOKS).
 *
 * All memory is the caller's: a per-key table (mv_table_size() bytes, 8-byte aligned) filled by
 * mv_key_load() and only read afterwards, so one table serves any number of threads. The
 * generator's table is simply the table of G, loaded the same way. The engine's only static
 * state is the CPU-feature choice (SHA extensions, mulx/adx), made once and read-only after.
 * Variable-time code: it only ever sees public data. No allocation, no I/O, never aborts.
 * manverify/es256.py is the only caller and maps every return code in one table.
 */
#ifndef MV_H
#define MV_H

#include <stddef.h>

/* cdef-begin: native/build.py hands this part to cffi verbatim (plain declarations only) */
/* Return codes. Only MV_VALID and MV_INVALID are verdicts on a signature; MV_EPOINT is a public key
 * that is not a point of P-256; every other negative code is the engine refusing its arguments. */
enum {
    MV_OK = 0,
    MV_VALID = 1,
    MV_INVALID = 0,
    MV_EARG = -1,   /* a length or pointer is wrong */
    MV_EPOINT = -2, /* the public key is not a point of P-256 */
    MV_ETABLE = -3  /* a table was not filled by mv_key_load */
};

int mv_version(void);
/* CPU features the engine uses on this machine: 1 = SHA extensions for SHA-256,
 * 2 = mulx/adcx/adox field multiplication. */
int mv_features(void);
size_t mv_table_size(void);
size_t mv_scratch_size(void);

/* point65: 0x04 || X || Y. scratch is only used during the call. */
int mv_key_load(unsigned char *table, size_t table_len, unsigned char *scratch, size_t scratch_len,
                const unsigned char *point65, size_t point_len);

/* 1 iff sig64 (r || s, big-endian) is a valid ECDSA signature of SHA-256(msg) under the key. */
int mv_verify(const unsigned char *gtable, const unsigned char *qtable,
              const unsigned char *msg, size_t msg_len, const unsigned char *sig64, size_t sig_len);

/* n signatures; out[i] gets what mv_verify would return, with one inversion per 64 of them. The
 * data is packed (a few Python objects per batch, not per item): message i is
 * msgs[offsets[i] .. offsets[i+1]) (offsets has n + 1 entries, non-decreasing, the last <= msgs_len),
 * signature i is sigs[64 i .. 64 i + 64) (sigs_len == 64 n). Returns MV_EARG without touching out
 * when these do not hold. A sub-range [lo, hi) of a packed batch is the call with qtables + lo,
 * offsets + lo, sigs + 64 lo, out + lo and n = hi - lo (msgs unchanged). */
int mv_verify_batch_packed(const unsigned char *gtable, const unsigned char *const *qtables,
                           const unsigned char *msgs, size_t msgs_len, const size_t *offsets,
                           const unsigned char *sigs, size_t sigs_len, int *out, size_t n);

/* Cut n compact PASSporTs packed as above (token i = toks[offsets[i] .. offsets[i+1])) and
 * recognise the claims every SHAKEN signer writes: token i is that shape when it is three
 * dot-separated segments whose signature is strict unpadded base64url of 64 bytes and whose claims
 * segment is strict base64url of the JSON object {"attest":S,"dest":{"tn":[S,...]},"iat":I,
 * "orig":{"tn":S},"origid":S} (members in any order, each once, nothing else; no whitespace; S a
 * string of printable ASCII without escapes; I a non-negative integer of at most 15 digits; 1 to
 * 8 dest numbers). The JOSE header segment is not looked at.
 * out gets n records of MV_SCAN_RECORD bytes, then n lines. Record i: r||s (64 bytes), iat (8
 * bytes, little-endian) and the end of the signing input header "." claims within token i (8
 * bytes, little-endian). Line i: attest '"' orig '"' origid ('"' dest)+ '\n' when token i is the
 * shape, else just '\n' (record zeroed): the caller decodes that token itself. out needs
 * MV_SCAN_RECORD n + toks_len + n bytes; *out_used gets the bytes written. MV_EARG (nothing
 * written) when the arguments do not hold. */
#define MV_SCAN_RECORD 80
int mv_shaken_scan(const unsigned char *toks, size_t toks_len, const size_t *offsets, size_t n,
                   unsigned char *out, size_t out_len, size_t *out_used);
/* cdef-end */

#endif
