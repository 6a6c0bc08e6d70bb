/* SPDX-License-Identifier: Apache-2.0
 *
 * mv_native.c's additions to the mv.h ABI: CPU feature report and test hooks. Everything between
 * the cdef markers is read verbatim by native/build.py (plain declarations only).
 */
#ifndef MV_NATIVE_H
#define MV_NATIVE_H

#include <stddef.h>

#include "mv.h"

/* cdef-begin */
/* CPU features the engine uses on this machine: 1 = SHA extensions for SHA-256,
 * 2 = mulx/adcx/adox field multiplication. */
int mv_features(void);

/* Test hooks: deterministic, side-effect free; tests/test_native*.py check them against a Python
 * model of P-256. Return 0 on success, a negative MV_E* code otherwise. */
/* SHA-256 with a given implementation: 0 portable, 1 SHA extensions (MV_EUNSUPPORTED if absent). */
int mv_test_sha256_impl(unsigned char *out32, const unsigned char *msg, size_t msg_len, int impl);
/* a·b mod p (a, b < p, big-endian): impl 0 portable mul, 1 mulx/adx mul; a·a mod p: impl 2 portable
 * squaring, 3 mulx/adx squaring (MV_EUNSUPPORTED without BMI2/ADX). */
int mv_test_fe_mul(unsigned char *out32, const unsigned char *a32, const unsigned char *b32, int impl);
/* s^-1 mod n for 0 < s < n. */
int mv_test_scalar_inverse(unsigned char *out32, const unsigned char *s32);
/* u1·G + u2·Q with both tables (u1, u2: any 256-bit values); 0 finite, 1 infinity (out zeroed). */
int mv_test_lincomb(unsigned char *out65, const unsigned char *gtable, const unsigned char *qtable,
                    const unsigned char *u1_32, const unsigned char *u2_32);
/* The stored table point multiple·2^(7·window)·P, 1 <= multiple <= 64, window < 37. */
int mv_test_table_entry(unsigned char *out65, const unsigned char *table, size_t window, size_t multiple);
/* cdef-end */

#define MV_EUNSUPPORTED (-4)

#endif /* MV_NATIVE_H */
