/* SPDX-License-Identifier: Apache-2.0
 *
 * manverify native ES256 engine: the whole C ABI.
 *
 * Everything between the cdef markers is read verbatim by native/build.py as the cffi cdef, so it
 * must stay plain declarations (no other preprocessor lines, no macros).
 *
 * Conventions (bitcoin-core/secp256k1 style): outputs first, each buffer followed by its length,
 * sizes in names. No function allocates, does I/O or aborts. Every length is checked; a wrong one
 * yields a negative code, never undefined behaviour. Verification handles public data only and is
 * variable-time.
 *
 * Key tables live in caller-provided memory of mv_table_size() bytes, 8-byte aligned. They are
 * written only by mv_key_load() and are read-only afterwards, so one table may be used by any
 * number of threads at once.
 */
#ifndef MV_NATIVE_H
#define MV_NATIVE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* cdef-begin */
enum {
    MV_VALID = 1,          /* mv_verify: the signature is valid                                  */
    MV_INVALID = 0,        /* mv_verify: it is not; mv_key_load / mv_verify_batch: success        */
    MV_ERR_ARG = -1,       /* a NULL pointer or a wrong length                                    */
    MV_ERR_ALIGN = -2,     /* table memory is not 8-byte aligned                                  */
    MV_ERR_TABLE = -3,     /* the table was not produced by mv_key_load (or is corrupt)           */
    MV_ERR_POINT = -4,     /* not an uncompressed P-256 point on the curve with coordinates < p   */
    MV_ERR_UNSUPPORTED = -5 /* a test hook asked for something this CPU/build lacks               */
};

enum {
    MV_FEATURE_SHANI = 1,  /* SHA-256 uses the SHA extensions                                     */
    MV_FEATURE_ADX = 2     /* field arithmetic uses mulx/adcx/adox                               */
};

/* The library version, e.g. "0.1.0", and the CPU features the engine picked (MV_FEATURE_*). */
const char *mv_version(void);
int mv_features(void);

/* Bytes of caller memory needed for one key table. */
size_t mv_table_size(void);

/* Validate point65 (0x04 || X || Y, big-endian) and build its table into table[table_len].
 * Returns MV_INVALID (0) on success, MV_ERR_POINT if the point is not a valid P-256 public key,
 * another negative code on bad arguments. On failure the table is left unusable. */
int mv_key_load(unsigned char *table, size_t table_len,
                const unsigned char *point65, size_t point_len);

/* Copy the key's uncompressed point out of a loaded table. Returns 0 or a negative code. */
int mv_key_point(unsigned char *point65, size_t point_len,
                 const unsigned char *table, size_t table_len);

/* ES256: SHA-256(msg) signed by the key of table, raw sig64 = r || s (big-endian, 32 bytes each).
 * Returns MV_VALID, MV_INVALID (any r, s outside [1, n-1] included) or a negative code. */
int mv_verify(const unsigned char *table, size_t table_len,
              const unsigned char *msg, size_t msg_len,
              const unsigned char *sig64, size_t sig_len);

/* A batch of count verifications. Item i: key tables[i], message msgs[offsets[i] .. offsets[i+1]),
 * signature sigs[64*i .. 64*i+64). verdicts[i] gets 1 (valid) or 0 (invalid or unusable table).
 * Returns the number of items whose table was unusable (0 normally), or a negative code when the
 * arguments as a whole are malformed (then every verdict is 0). */
int mv_verify_batch(unsigned char *verdicts, size_t count,
                    const unsigned char *const *tables, size_t table_len,
                    const unsigned char *msgs, size_t msgs_len,
                    const size_t *offsets, size_t offsets_len,
                    const unsigned char *sigs, size_t sigs_len);

/* Test hooks: deterministic, side-effect free, used by tests/test_native*.py against a Python
 * model of P-256. Each point result is 65 bytes uncompressed; the return value is 1 for a finite
 * point, 0 for the point at infinity (out65 zeroed), negative on bad arguments. */
int mv_test_mul(unsigned char *out65, size_t out_len,
                const unsigned char *table, size_t table_len,
                const unsigned char *scalar32, size_t scalar_len);
int mv_test_mul_gen(unsigned char *out65, size_t out_len,
                    const unsigned char *scalar32, size_t scalar_len);
int mv_test_lincomb(unsigned char *out65, size_t out_len,
                    const unsigned char *table, size_t table_len,
                    const unsigned char *u1_32, size_t u1_len,
                    const unsigned char *u2_32, size_t u2_len);
int mv_test_table_entry(unsigned char *out65, size_t out_len,
                        const unsigned char *table, size_t table_len,
                        size_t window, size_t multiple);
/* impl 0: portable, 1: SHA extensions (MV_ERR_UNSUPPORTED when absent). */
int mv_test_sha256(unsigned char *out32, size_t out_len,
                   const unsigned char *msg, size_t msg_len, int impl);
/* s^-1 mod n for 0 < s < n (big-endian); MV_ERR_ARG when s is out of range. */
int mv_test_scalar_inverse(unsigned char *out32, size_t out_len,
                           const unsigned char *s32, size_t s_len);
/* cdef-end */

#ifdef __cplusplus
}
#endif

#endif /* MV_NATIVE_H */
