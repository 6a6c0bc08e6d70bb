/* SPDX-License-Identifier: Apache-2.0
 *
 * Arithmetic modulo the group order n of P-256: just what ECDSA verification needs
 * (s^-1, u1 = e·s^-1, u2 = r·s^-1). Four 64-bit limbs, Montgomery multiplication with
 * -n^-1 mod 2^64 = 0xccd1c8aaee00bc4f. Values are fully reduced (< n).
 */
#ifndef MV_SCALAR_IMPL_H
#define MV_SCALAR_IMPL_H

#include "field_impl.h"

typedef struct {
    uint64_t d[4];
} mv_sc;

static const mv_sc MV_SC_N = {{0xf3b9cac2fc632551ULL, 0xbce6faada7179e84ULL, 0xffffffffffffffffULL,
                               0xffffffff00000000ULL}};
static const mv_sc MV_SC_ONE_MONT = {{0x0c46353d039cdaafULL, 0x4319055258e8617bULL, 0x0000000000000000ULL,
                                      0x00000000ffffffffULL}};
static const mv_sc MV_SC_R2 = {{0x83244c95be79eea2ULL, 0x4699799c49bd6fa6ULL, 0x2845b2392b6bec59ULL,
                                0x66e12d94f3d95620ULL}};
#define MV_SC_N0 0xccd1c8aaee00bc4fULL

/* r = t - n when t (5 limbs) >= n, else t. */
static inline void mv_sc_reduce_once(mv_sc *r, uint64_t t0, uint64_t t1, uint64_t t2, uint64_t t3,
                                     uint64_t t4) {
    mv_u128 b;
    uint64_t s0, s1, s2, s3, borrow;
    b = (mv_u128)t0 - MV_SC_N.d[0];
    s0 = (uint64_t)b;
    b = (mv_u128)t1 - MV_SC_N.d[1] - (uint64_t)((b >> 64) & 1);
    s1 = (uint64_t)b;
    b = (mv_u128)t2 - MV_SC_N.d[2] - (uint64_t)((b >> 64) & 1);
    s2 = (uint64_t)b;
    b = (mv_u128)t3 - MV_SC_N.d[3] - (uint64_t)((b >> 64) & 1);
    s3 = (uint64_t)b;
    borrow = (uint64_t)((b >> 64) & 1);
    if (t4 >= borrow) {
        r->d[0] = s0; r->d[1] = s1; r->d[2] = s2; r->d[3] = s3;
    } else {
        r->d[0] = t0; r->d[1] = t1; r->d[2] = t2; r->d[3] = t3;
    }
}

/* r = a·b·2^-256 mod n (a, b < n). r may alias a or b. */
static void mv_sc_mul(mv_sc *r, const mv_sc *a, const mv_sc *b) {
    uint64_t t[6] = {0, 0, 0, 0, 0, 0};
    int i, j;
    for (i = 0; i < 4; i++) {
        mv_u128 c = 0;
        uint64_t m;
        for (j = 0; j < 4; j++) {
            c += (mv_u128)a->d[j] * b->d[i] + t[j];
            t[j] = (uint64_t)c;
            c >>= 64;
        }
        c += t[4];
        t[4] = (uint64_t)c;
        t[5] = (uint64_t)(c >> 64);
        m = t[0] * MV_SC_N0;
        c = (mv_u128)m * MV_SC_N.d[0] + t[0];
        c >>= 64;
        for (j = 1; j < 4; j++) {
            c += (mv_u128)m * MV_SC_N.d[j] + t[j];
            t[j - 1] = (uint64_t)c;
            c >>= 64;
        }
        c += t[4];
        t[3] = (uint64_t)c;
        t[4] = t[5] + (uint64_t)(c >> 64);
    }
    mv_sc_reduce_once(r, t[0], t[1], t[2], t[3], t[4]);
}

/* Parse big-endian 32 bytes; 0 unless 0 < value < n. */
static int mv_sc_set_be_nonzero(mv_sc *r, const unsigned char *in32) {
    mv_u256_from_be(r->d, in32);
    if ((r->d[0] | r->d[1] | r->d[2] | r->d[3]) == 0) return 0;
    return mv_u256_lt(r->d, MV_SC_N.d);
}

/* A 256-bit hash reduced mod n (one subtraction suffices as 2^256 < 2n). */
static void mv_sc_set_be_reduce(mv_sc *r, const unsigned char *in32) {
    uint64_t t[4];
    mv_u256_from_be(t, in32);
    mv_sc_reduce_once(r, t[0], t[1], t[2], t[3], 0);
}

/* x = x / 2^k mod n, 0 < k < 64, x < n: add the multiple m·n (m < 2^k) that clears the low k bits,
 * using -n^-1 mod 2^64, then shift. (x + m·n) / 2^k < n, so the result stays reduced. */
static inline void mv_sc_halve_k(uint64_t x[4], int k) {
    const uint64_t mask = ((uint64_t)1 << k) - 1;
    uint64_t m = (x[0] * MV_SC_N0) & mask, t[5];
    mv_u128 c = 0;
    int i;
    for (i = 0; i < 4; i++) {
        c += (mv_u128)m * MV_SC_N.d[i] + x[i];
        t[i] = (uint64_t)c;
        c >>= 64;
    }
    t[4] = (uint64_t)c;
    for (i = 0; i < 4; i++) x[i] = (t[i] >> k) | (t[i + 1] << (64 - k));
}

/* Shift right by k, 0 < k < 64. */
static inline void mv_u256_shr(uint64_t u[4], int k) {
    u[0] = (u[0] >> k) | (u[1] << (64 - k));
    u[1] = (u[1] >> k) | (u[2] << (64 - k));
    u[2] = (u[2] >> k) | (u[3] << (64 - k));
    u[3] >>= k;
}

/* u -= v (u >= v). */
static inline void mv_u256_sub(uint64_t u[4], const uint64_t v[4]) {
    mv_u128 c = 0;
    int i;
    for (i = 0; i < 4; i++) {
        c = (mv_u128)u[i] - v[i] - (uint64_t)((c >> 64) & 1);
        u[i] = (uint64_t)c;
    }
}

/* x = x - y mod n (x, y < n). */
static inline void mv_sc_sub(uint64_t x[4], const uint64_t y[4]) {
    mv_u128 c = 0;
    uint64_t borrow;
    int i;
    for (i = 0; i < 4; i++) {
        c = (mv_u128)x[i] - y[i] - (uint64_t)((c >> 64) & 1);
        x[i] = (uint64_t)c;
    }
    borrow = (uint64_t)((c >> 64) & 1);
    if (borrow) {
        c = 0;
        for (i = 0; i < 4; i++) {
            c += (mv_u128)x[i] + MV_SC_N.d[i];
            x[i] = (uint64_t)c;
            c >>= 64;
        }
    }
}

/* r = a^-1 mod n for 0 < a < n (plain, not Montgomery form). Variable time (public data only):
 * binary extended Euclid keeping x1·a = u and x2·a = v (mod n), v odd, trailing zeros of u
 * removed up to 63 at a time. Ends with u = 0, v = gcd = 1, so x2 = a^-1. */
static void mv_sc_inv_var(mv_sc *r, const mv_sc *a) {
    uint64_t u[4], v[4], x1[4] = {1, 0, 0, 0}, x2[4] = {0, 0, 0, 0}, t;
    int i;
    memcpy(u, a->d, sizeof(u));
    memcpy(v, MV_SC_N.d, sizeof(v));
    while (u[0] | u[1] | u[2] | u[3]) {
        while ((u[0] & 1) == 0) {
            int k = u[0] ? __builtin_ctzll(u[0]) : 63;
            mv_u256_shr(u, k);
            mv_sc_halve_k(x1, k);
        }
        if (mv_u256_lt(u, v)) {
            for (i = 0; i < 4; i++) {
                t = u[i]; u[i] = v[i]; v[i] = t;
                t = x1[i]; x1[i] = x2[i]; x2[i] = t;
            }
        }
        mv_u256_sub(u, v);
        mv_sc_sub(x1, x2);
    }
    memcpy(r->d, x2, sizeof(x2));
}

#endif /* MV_SCALAR_IMPL_H */
