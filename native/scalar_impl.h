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
    uint64_t s0, s1, s2, s3, s4, mask;
    unsigned char b;
    b = mv_subb(0, t0, MV_SC_N.d[0], &s0);
    b = mv_subb(b, t1, MV_SC_N.d[1], &s1);
    b = mv_subb(b, t2, MV_SC_N.d[2], &s2);
    b = mv_subb(b, t3, MV_SC_N.d[3], &s3);
    b = mv_subb(b, t4, 0, &s4);
    mask = (uint64_t)0 - (uint64_t)b; /* all ones when t < n: keep t */
    r->d[0] = (t0 & mask) | (s0 & ~mask);
    r->d[1] = (t1 & mask) | (s1 & ~mask);
    r->d[2] = (t2 & mask) | (s2 & ~mask);
    r->d[3] = (t3 & mask) | (s3 & ~mask);
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

static inline unsigned mv_u256_ctz(const uint64_t a[4]) {
    int i;
    for (i = 0; i < 4; i++) {
        if (a[i]) return (unsigned)(64 * i + __builtin_ctzll(a[i]));
    }
    return 256;
}

/* a >>= z, a <<= z (0 < z < 256). */
static inline void mv_u256_shr(uint64_t a[4], unsigned z) {
    unsigned q = z / 64, b = z % 64, i;
    for (i = 0; i < 4; i++) {
        uint64_t lo = i + q < 4 ? a[i + q] : 0, hi = i + q + 1 < 4 ? a[i + q + 1] : 0;
        a[i] = b ? (lo >> b) | (hi << (64 - b)) : lo;
    }
}

static inline void mv_u256_shl(uint64_t a[4], unsigned z) {
    unsigned q = z / 64, b = z % 64;
    int i;
    for (i = 3; i >= 0; i--) {
        uint64_t hi = i >= (int)q ? a[i - q] : 0, lo = i >= (int)q + 1 ? a[i - q - 1] : 0;
        a[i] = b ? (hi << b) | (lo >> (64 - b)) : hi;
    }
}

static inline void mv_u256_add(uint64_t a[4], const uint64_t b[4]) {
    unsigned char c;
    c = mv_addc(0, a[0], b[0], &a[0]);
    c = mv_addc(c, a[1], b[1], &a[1]);
    c = mv_addc(c, a[2], b[2], &a[2]);
    (void)mv_addc(c, a[3], b[3], &a[3]);
}

static inline void mv_u256_sub(uint64_t a[4], const uint64_t b[4]) {
    unsigned char c;
    c = mv_subb(0, a[0], b[0], &a[0]);
    c = mv_subb(c, a[1], b[1], &a[1]);
    c = mv_subb(c, a[2], b[2], &a[2]);
    (void)mv_subb(c, a[3], b[3], &a[3]);
}

/* w = a^-1·2^256 mod n (the Montgomery form of the inverse) for 0 < a < n, a plain.
 * Variable time (public data only): Kaliski's almost-inverse, a binary extended Euclid without
 * modular reductions in the loop. Invariant n = u·t + v·r with u, v >= 1 keeps r, t <= n; it
 * yields x = a^-1·2^k mod n with 256 <= k <= 512, and one Montgomery multiplication by
 * 2^(512-k) turns 2^k into 2^256. Trailing zeros are removed a whole run at a time. */
static void mv_sc_inv_mont_var(mv_sc *w, const mv_sc *a) {
    uint64_t u[4], v[4], r[4] = {0, 0, 0, 0}, t[4] = {1, 0, 0, 0}, x[4], c[4] = {0, 0, 0, 0};
    unsigned k = 0, z;
    mv_sc xs, cs;
    mv_u128 carry;
    int i;

    memcpy(u, MV_SC_N.d, sizeof(u));
    memcpy(v, a->d, sizeof(v));
    for (;;) {
        if ((u[0] & 1) == 0) {
            z = mv_u256_ctz(u);
            mv_u256_shr(u, z);
            mv_u256_shl(t, z);
            k += z;
        }
        if ((v[0] & 1) == 0) {
            z = mv_u256_ctz(v);
            mv_u256_shr(v, z);
            mv_u256_shl(r, z);
            k += z;
        }
        if (mv_u256_lt(v, u)) {
            mv_u256_sub(u, v);
            mv_u256_add(r, t);
        } else {
            mv_u256_sub(v, u);
            mv_u256_add(t, r);
            if ((v[0] | v[1] | v[2] | v[3]) == 0) break;
        }
    }
    /* last step: r <- 2r mod n, k + 1; then x = n - r */
    if (!mv_u256_lt(r, MV_SC_N.d)) mv_u256_sub(r, MV_SC_N.d);
    carry = 0;
    for (i = 0; i < 4; i++) {
        carry += (mv_u128)r[i] + r[i];
        r[i] = (uint64_t)carry;
        carry >>= 64;
    }
    mv_sc_reduce_once(&xs, r[0], r[1], r[2], r[3], (uint64_t)carry);
    k += 1;
    memcpy(x, MV_SC_N.d, sizeof(x));
    mv_u256_sub(x, xs.d);
    if (!mv_u256_lt(x, MV_SC_N.d)) mv_u256_sub(x, MV_SC_N.d); /* xs = 0 cannot happen (a != 0) */
    memcpy(xs.d, x, sizeof(x));
    /* w = x·2^(512-k)·2^-256 = a^-1·2^256 */
    /* Kaliski: bits(n) <= k <= 2·bits(n), i.e. 256 <= k <= 512 */
    if (k > 256) {
        c[(512 - k) / 64] = (uint64_t)1 << ((512 - k) % 64);
        memcpy(cs.d, c, sizeof(c));
    } else {
        cs = MV_SC_ONE_MONT; /* 2^256 mod n */
    }
    mv_sc_mul(w, &xs, &cs);
}

#endif /* MV_SCALAR_IMPL_H */
