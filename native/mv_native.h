/* SPDX-License-Identifier: Apache-2.0
 *
 * Test hooks into mv_native.c's internals, compiled only with -DMV_TEST_HOOKS: tests/native_hooks.py
 * builds them into a separate module beside the shipped one, whose ABI is mv.h alone. They are
 * deterministic and side-effect free; tests/test_native_model.py and tests/test_es256.py check them
 * against a Python model of P-256 and against hashlib. Each returns 0 on success or a negative MV_E*
 * code. Everything between the cdef markers is handed to cffi verbatim (plain declarations only).
 */
#ifndef MV_NATIVE_H
#define MV_NATIVE_H

#include <stddef.h>

#include "mv.h"

#ifdef MV_TEST_HOOKS
/* cdef-begin */
enum { MV_EUNSUPPORTED = -4 }; /* the build or the CPU lacks the implementation asked for */

/* SHA-256 with a given implementation: 0 portable, 1 SHA extensions (MV_EUNSUPPORTED if absent). */
int mv_test_sha256_impl(unsigned char *out32, const unsigned char *msg, size_t msg_len, int impl);
/* a·b mod p (a, b < p, big-endian): impl 0 portable mul, 1 mulx/adx mul; a·a mod p: impl 2 portable
 * squaring, 3 mulx/adx squaring (MV_EUNSUPPORTED without BMI2/ADX). */
int mv_test_fe_mul(unsigned char *out32, const unsigned char *a32, const unsigned char *b32, int impl);
/* s^-1 mod n for 0 < s < n. */
int mv_test_scalar_inverse(unsigned char *out32, const unsigned char *s32);
/* Points out: 65-byte uncompressed, or zeros and 1 for infinity; 0 for a finite point. */
/* u1·G + u2·Q with both tables (u1, u2: any 256-bit values). */
int mv_test_lincomb(unsigned char *out65, const unsigned char *gtable, const unsigned char *qtable,
                    const unsigned char *u1_32, const unsigned char *u2_32);
/* k·P from P's table (k: 32 bytes big-endian, any value). */
int mv_test_table_mul(unsigned char *out65, const unsigned char *table, const unsigned char *k32);
/* k·P by plain double-and-add from the point itself, to hold the tables to. */
int mv_test_naive_mul(unsigned char *out65, const unsigned char *point65, const unsigned char *k32);
/* The stored table point multiple·2^(7·window)·P, 1 <= multiple <= 64, window < 37. */
int mv_test_table_entry(unsigned char *out65, const unsigned char *table, size_t window, size_t multiple);
/* cdef-end */
#endif /* MV_TEST_HOOKS */

#endif /* MV_NATIVE_H */
