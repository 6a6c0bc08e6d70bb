/* SPDX-License-Identifier: Apache-2.0
 *
 * Fixed-base multiplication with precomputed affine tables, for G (built once) and for each key
 * (built at key load).
 *
 * A table for point P with window width W holds, for every window i in [0, MV_WINDOWS) and every
 * k in [1, 2^(W-1)], the affine point k·2^(W·i)·P (Montgomery-form x, y: 64 bytes). A scalar is
 * recoded into MV_WINDOWS signed digits d_i in [-(2^(W-1)-1), 2^(W-1)], and k·P = sum_i d_i·2^(W·i)·P:
 * one mixed addition per non-zero digit, no doublings. W = 7: 37 windows x 64 points x 64 bytes =
 * 148 KiB per key.
 */
#ifndef MV_ECMULT_IMPL_H
#define MV_ECMULT_IMPL_H

#include "group_impl.h"

#define MV_W 7
#define MV_WINDOWS ((257 + MV_W - 1) / MV_W) /* 257: a carry out of bit 255 still fits */
#define MV_TEETH (1 << (MV_W - 1))           /* points per window */
#define MV_TABLE_POINTS (MV_WINDOWS * MV_TEETH)
#define MV_TABLE_LIMBS (MV_TABLE_POINTS * 8)

static inline void mv_table_get(mv_ge *r, const uint64_t *table, int window, int digit) {
    const uint64_t *p;
    if (digit > 0) {
        p = table + ((size_t)window * MV_TEETH + (size_t)(digit - 1)) * 8;
        memcpy(r->x.d, p, 32);
        memcpy(r->y.d, p + 4, 32);
    } else {
        p = table + ((size_t)window * MV_TEETH + (size_t)(-digit - 1)) * 8;
        memcpy(r->x.d, p, 32);
        memcpy(r->y.d, p + 4, 32);
        mv_fe_neg(&r->y, &r->y);
    }
}

/* Bits [pos, pos + MV_W) of a 256-bit scalar (bits past 255 read as 0). */
static inline unsigned mv_bits(const uint64_t k[4], int pos) {
    int limb = pos >> 6, shift = pos & 63;
    uint64_t v;
    if (limb >= 4) return 0;
    v = k[limb] >> shift;
    if (shift + MV_W > 64 && limb + 1 < 4) v |= k[limb + 1] << (64 - shift);
    return (unsigned)(v & ((1u << MV_W) - 1));
}

/* Signed-digit recoding: digits in [-(2^(W-1)-1), 2^(W-1)] with sum d_i·2^(W·i) = k. */
static void mv_recode(int digits[MV_WINDOWS], const uint64_t k[4]) {
    unsigned carry = 0;
    int i;
    for (i = 0; i < MV_WINDOWS; i++) {
        int v = (int)(mv_bits(k, i * MV_W) + carry);
        if (v > MV_TEETH) {
            v -= 1 << MV_W;
            carry = 1;
        } else {
            carry = 0;
        }
        digits[i] = v;
    }
    /* carry is 0 here: the top window holds at most 256 - W·(MV_WINDOWS-1) < W - 1 bits */
}

/* Converts pts[0..count) from Jacobian (x, y stored in the table slots, z in zs) to affine in
 * place, with one inversion (Montgomery's trick). prefix is scratch of count elements. */
static void mv_batch_to_affine(uint64_t *slots, mv_fe *zs, mv_fe *prefix, size_t count) {
    mv_fe inv, t, zi2, zi3;
    size_t i;
    prefix[0] = zs[0];
    for (i = 1; i < count; i++) mv_fe_mul(&prefix[i], &prefix[i - 1], &zs[i]);
    mv_fe_inv(&inv, &prefix[count - 1]);
    for (i = count - 1; i > 0; i--) {
        mv_fe_mul(&t, &inv, &prefix[i - 1]); /* 1/z_i */
        mv_fe_mul(&inv, &inv, &zs[i]);       /* 1/(z_0 ... z_{i-1}) */
        zs[i] = t;
    }
    zs[0] = inv;
    for (i = 0; i < count; i++) {
        mv_fe x, y;
        uint64_t *p = slots + i * 8;
        memcpy(x.d, p, 32);
        memcpy(y.d, p + 4, 32);
        mv_fe_sqr(&zi2, &zs[i]);
        mv_fe_mul(&zi3, &zi2, &zs[i]);
        mv_fe_mul(&x, &x, &zi2);
        mv_fe_mul(&y, &y, &zi3);
        memcpy(p, x.d, 32);
        memcpy(p + 4, y.d, 32);
    }
}

/* Build the table of P (finite, on the curve) into table[MV_TABLE_LIMBS]. zs and prefix are
 * caller scratch of MV_TABLE_POINTS elements each: every point goes to affine with one inversion. */
static void mv_table_build(uint64_t *table, const mv_ge *p, mv_fe *zs, mv_fe *prefix) {
    mv_gej bases_j[MV_WINDOWS];
    mv_ge bases[MV_WINDOWS];
    uint64_t base_slots[MV_WINDOWS * 8];
    int i, j, k;

    /* bases 2^(W·i)·P, then all to affine with one inversion */
    mv_gej_set_ge(&bases_j[0], p);
    for (i = 1; i < MV_WINDOWS; i++) {
        bases_j[i] = bases_j[i - 1];
        for (j = 0; j < MV_W; j++) mv_gej_double(&bases_j[i], &bases_j[i]);
    }
    for (i = 0; i < MV_WINDOWS; i++) {
        memcpy(base_slots + i * 8, bases_j[i].x.d, 32);
        memcpy(base_slots + i * 8 + 4, bases_j[i].y.d, 32);
        zs[i] = bases_j[i].z;
    }
    mv_batch_to_affine(base_slots, zs, prefix, MV_WINDOWS);
    for (i = 0; i < MV_WINDOWS; i++) {
        memcpy(bases[i].x.d, base_slots + i * 8, 32);
        memcpy(bases[i].y.d, base_slots + i * 8 + 4, 32);
    }

    /* multiples 1..2^(W-1) of each base in Jacobian form (x, y in the table slots, z in zs); two
     * windows at a time so their independent addition chains overlap */
    for (i = 0; i < MV_WINDOWS; i += 2) {
        int two = i + 1 < MV_WINDOWS, w;
        mv_gej acc[2];
        mv_gej_set_ge(&acc[0], &bases[i]);
        if (two) mv_gej_set_ge(&acc[1], &bases[i + 1]);
        for (k = 0; k < MV_TEETH; k++) {
            if (k > 0) { /* k = 1 doubles: handled inside */
                if (two) {
                    mv_gej_add_ge_2(&acc[0], &bases[i], &acc[1], &bases[i + 1]);
                } else {
                    mv_gej_add_ge(&acc[0], &acc[0], &bases[i]);
                }
            }
            /* (k+1)·base is never infinity: k + 1 <= 2^(W-1) < n */
            for (w = 0; w <= two; w++) {
                uint64_t *s = table + ((size_t)(i + w) * MV_TEETH + (size_t)k) * 8;
                memcpy(s, acc[w].x.d, 32);
                memcpy(s + 4, acc[w].y.d, 32);
                zs[(i + w) * MV_TEETH + k] = acc[w].z;
            }
        }
    }
    mv_batch_to_affine(table, zs, prefix, MV_TABLE_POINTS);
}

/* r = sum of the digits' table points: table t1 with digits d1 plus (when t2 != NULL) t2 with d2.
 * Additions form one dependency chain per accumulator, so the two tables get an accumulator each:
 * the processor overlaps the two independent chains, and one full addition joins them. */
static void mv_ecmult_tables(mv_gej *r, const uint64_t *t1, const int d1[MV_WINDOWS],
                             const uint64_t *t2, const int d2[MV_WINDOWS]) {
    mv_ge p1, p2;
    mv_gej a2;
    int i;
    mv_gej_set_infinity(r);
    mv_gej_set_infinity(&a2);
    /* All table lines are known now: request them at once so the misses overlap (with hundreds
     * of keys the tables do not stay in cache). A point may straddle two lines. */
    for (i = 0; i < MV_WINDOWS; i++) {
        if (d1[i]) {
            const uint64_t *p = t1 + ((size_t)i * MV_TEETH + (size_t)(d1[i] > 0 ? d1[i] : -d1[i]) - 1) * 8;
            __builtin_prefetch(p);
            __builtin_prefetch(p + 7);
        }
        if (t2 != NULL && d2[i]) {
            const uint64_t *p = t2 + ((size_t)i * MV_TEETH + (size_t)(d2[i] > 0 ? d2[i] : -d2[i]) - 1) * 8;
            __builtin_prefetch(p);
            __builtin_prefetch(p + 7);
        }
    }
    for (i = 0; i < MV_WINDOWS; i++) {
        if (d1[i] && t2 != NULL && d2[i]) {
            mv_table_get(&p1, t1, i, d1[i]);
            mv_table_get(&p2, t2, i, d2[i]);
            mv_gej_add_ge_2(r, &p1, &a2, &p2);
        } else if (d1[i]) {
            mv_table_get(&p1, t1, i, d1[i]);
            mv_gej_add_ge(r, r, &p1);
        } else if (t2 != NULL && d2[i]) {
            mv_table_get(&p2, t2, i, d2[i]);
            mv_gej_add_ge(&a2, &a2, &p2);
        }
    }
    if (t2 != NULL) mv_gej_add(r, r, &a2);
}

#endif /* MV_ECMULT_IMPL_H */
