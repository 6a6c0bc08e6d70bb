/* SPDX-License-Identifier: Apache-2.0
 *
 * manverify native ES256 (ECDSA P-256 / SHA-256) verification: a tiny ABI over byte buffers,
 * implemented by mv_native.c (test hooks and the CPU-feature report are in mv_native.h).
 *
 * All memory is the caller's: a per-key table (mv_table_size() bytes, 8-byte aligned) filled by
 * mv_key_load() and only read afterwards, so one table serves any number of threads. The
 * generator's table is simply the table of G, loaded the same way. The engine's only static
 * state is the CPU-feature choice (SHA extensions, mulx/adx), made once and read-only after.
 * Variable-time code: it only ever sees public data. No allocation, no I/O, never aborts.
 * Return codes: 1 valid, 0 invalid, negative MV_E* for misuse (bad length, uninitialised table).
 */
#ifndef MV_H
#define MV_H

#include <stddef.h>

#define MV_OK 0
#define MV_VALID 1
#define MV_INVALID 0
#define MV_EARG (-1)      /* a length or pointer is wrong */
#define MV_EPOINT (-2)    /* the public key is not a point of P-256 */
#define MV_ETABLE (-3)    /* a table was not filled by mv_key_load */

/* cdef-begin: native/build.py hands this part to cffi verbatim (plain declarations only) */
int mv_version(void);
size_t mv_table_size(void);
size_t mv_scratch_size(void);

/* point65: 0x04 || X || Y. scratch is only used during the call. */
int mv_key_load(unsigned char *table, size_t table_len, unsigned char *scratch, size_t scratch_len,
                const unsigned char *point65, size_t point_len);

/* 1 iff sig64 (r || s, big-endian) is a valid ECDSA signature of SHA-256(msg) under the key. */
int mv_verify(const unsigned char *gtable, const unsigned char *qtable,
              const unsigned char *msg, size_t msg_len, const unsigned char *sig64, size_t sig_len);

/* n signatures; out[i] gets what mv_verify would return. One inversion for the whole batch. */
int mv_verify_batch(const unsigned char *gtable, const unsigned char *const *qtables,
                    const unsigned char *const *msgs, const size_t *msg_lens,
                    const unsigned char *const *sigs, int *out, size_t n);

/* The same batch with the data packed (fewer Python objects per item): message i is
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

/* Test hooks over public data. */
int mv_sha256(unsigned char *out32, const unsigned char *msg, size_t msg_len);
/* out65 = k * P using the table (k: 32 bytes big-endian, any value); 0 ok, 1 if the result is infinity */
int mv_table_mul(unsigned char *out65, const unsigned char *table, const unsigned char *k32);
/* out65 = k * P by plain double-and-add from the point itself; same convention */
int mv_naive_mul(unsigned char *out65, const unsigned char *point65, const unsigned char *k32);
/* cdef-end */

#endif
