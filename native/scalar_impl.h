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

/* r = a^-1 · 2^512 mod n... precisely: for a in Montgomery form (a·R), r = a^-1·R (Montgomery
 * form of the inverse), via Fermat a^(n-2) with a fixed 4-bit window. */
static void mv_sc_inv_mont(mv_sc *r, const mv_sc *a) {
    static const uint64_t e[4] = {0xf3b9cac2fc63254fULL, 0xbce6faada7179e84ULL, 0xffffffffffffffffULL,
                                  0xffffffff00000000ULL};
    mv_sc pw[16], acc;
    int i, j;
    pw[0] = MV_SC_ONE_MONT;
    pw[1] = *a;
    for (i = 2; i < 16; i++) mv_sc_mul(&pw[i], &pw[i - 1], a);
    acc = MV_SC_ONE_MONT;
    for (i = 63; i >= 0; i--) {
        unsigned nib = (unsigned)(e[i / 16] >> (4 * (i % 16))) & 15;
        if (i != 63) {
            for (j = 0; j < 4; j++) mv_sc_mul(&acc, &acc, &acc);
        }
        if (nib) mv_sc_mul(&acc, &acc, &pw[nib]);
    }
    *r = acc;
}

#endif /* MV_SCALAR_IMPL_H */
