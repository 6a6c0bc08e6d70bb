/* SPDX-License-Identifier: Apache-2.0
 *
 * P-256 points (y^2 = x^3 - 3x + b): affine (mv_ge) and Jacobian (mv_gej, x = X/Z^2, y = Y/Z^3).
 * Formulas from the Explicit-Formulas Database, g1p/auto-shortw-jacobian-3:
 *   doubling dbl-2001-b (a = -3), mixed addition madd-2007-bl (7M + 4S).
 * Special cases (infinity, P + P, P + (-P)) are handled explicitly: adversarial scalars reach them.
 */
#ifndef MV_GROUP_IMPL_H
#define MV_GROUP_IMPL_H

#include "field_impl.h"

typedef struct {
    mv_fe x, y;
} mv_ge;

typedef struct {
    mv_fe x, y, z;
    int infinity;
} mv_gej;

static inline void mv_gej_set_infinity(mv_gej *r) {
    memset(r, 0, sizeof(*r));
    r->infinity = 1;
}

static inline void mv_gej_set_ge(mv_gej *r, const mv_ge *a) {
    r->x = a->x;
    r->y = a->y;
    r->z = MV_FE_ONE;
    r->infinity = 0;
}

/* y^2 == x^3 - 3x + b (Montgomery-form coordinates). */
static int mv_ge_on_curve(const mv_ge *a) {
    mv_fe y2, x3, t;
    mv_fe_sqr(&y2, &a->y);
    mv_fe_sqr(&x3, &a->x);
    mv_fe_mul(&x3, &x3, &a->x);
    mv_fe_add(&t, &a->x, &a->x);
    mv_fe_add(&t, &t, &a->x);
    mv_fe_sub(&x3, &x3, &t);
    mv_fe_add(&x3, &x3, &MV_FE_B);
    return mv_fe_equal(&x3, &y2);
}

/* r = 2a. dbl-2001-b. r may alias a. */
static void mv_gej_double(mv_gej *r, const mv_gej *a) {
    mv_fe delta, gamma, beta, alpha, t1, t2, t3;
    if (a->infinity || mv_fe_is_zero(&a->y)) {
        mv_gej_set_infinity(r);
        return;
    }
    mv_fe_sqr(&delta, &a->z);              /* delta = Z1^2 */
    mv_fe_sqr(&gamma, &a->y);              /* gamma = Y1^2 */
    mv_fe_mul(&beta, &a->x, &gamma);       /* beta = X1*gamma */
    mv_fe_sub(&t1, &a->x, &delta);
    mv_fe_add(&t2, &a->x, &delta);
    mv_fe_mul(&t1, &t1, &t2);
    mv_fe_add(&alpha, &t1, &t1);
    mv_fe_add(&alpha, &alpha, &t1);        /* alpha = 3*(X1-delta)*(X1+delta) */
    mv_fe_add(&t3, &a->y, &a->z);
    mv_fe_sqr(&t3, &t3);
    mv_fe_sub(&t3, &t3, &gamma);
    mv_fe_sub(&r->z, &t3, &delta);         /* Z3 = (Y1+Z1)^2-gamma-delta */
    mv_fe_add(&beta, &beta, &beta);
    mv_fe_add(&beta, &beta, &beta);        /* beta <- 4*beta */
    mv_fe_sqr(&t1, &alpha);
    mv_fe_add(&t2, &beta, &beta);
    mv_fe_sub(&r->x, &t1, &t2);            /* X3 = alpha^2-8*beta */
    mv_fe_sub(&t1, &beta, &r->x);
    mv_fe_mul(&t1, &alpha, &t1);
    mv_fe_sqr(&t2, &gamma);
    mv_fe_add(&t2, &t2, &t2);
    mv_fe_add(&t2, &t2, &t2);
    mv_fe_add(&t2, &t2, &t2);              /* 8*gamma^2 */
    mv_fe_sub(&r->y, &t1, &t2);            /* Y3 = alpha*(4*beta-X3)-8*gamma^2 */
    r->infinity = 0;
}

/* r = a + b with b affine (madd-2007-bl). r may alias a. */
static void mv_gej_add_ge(mv_gej *r, const mv_gej *a, const mv_ge *b) {
    mv_fe z1z1, u2, s2, h, hh, i, j, rr, v, t;
    if (a->infinity) {
        mv_gej_set_ge(r, b);
        return;
    }
    mv_fe_sqr(&z1z1, &a->z);               /* Z1Z1 = Z1^2 */
    mv_fe_mul(&u2, &b->x, &z1z1);          /* U2 = X2*Z1Z1 */
    mv_fe_mul(&s2, &a->z, &z1z1);
    mv_fe_mul(&s2, &b->y, &s2);            /* S2 = Y2*Z1*Z1Z1 */
    mv_fe_sub(&h, &u2, &a->x);             /* H = U2-X1 */
    mv_fe_sub(&rr, &s2, &a->y);            /* S2-Y1 */
    if (mv_fe_is_zero(&h)) {
        if (mv_fe_is_zero(&rr)) {
            mv_gej_double(r, a);           /* a == b */
        } else {
            mv_gej_set_infinity(r);        /* a == -b */
        }
        return;
    }
    mv_fe_sqr(&hh, &h);                    /* HH = H^2 */
    mv_fe_add(&i, &hh, &hh);
    mv_fe_add(&i, &i, &i);                 /* I = 4*HH */
    mv_fe_mul(&j, &h, &i);                 /* J = H*I */
    mv_fe_add(&rr, &rr, &rr);              /* r = 2*(S2-Y1) */
    mv_fe_mul(&v, &a->x, &i);              /* V = X1*I */
    mv_fe_add(&t, &a->z, &h);
    mv_fe_sqr(&t, &t);
    mv_fe_sub(&t, &t, &z1z1);
    mv_fe_sub(&r->z, &t, &hh);             /* Z3 = (Z1+H)^2-Z1Z1-HH */
    mv_fe_mul(&t, &a->y, &j);
    mv_fe_add(&t, &t, &t);                 /* 2*Y1*J */
    mv_fe_sqr(&u2, &rr);
    mv_fe_sub(&u2, &u2, &j);
    mv_fe_sub(&u2, &u2, &v);
    mv_fe_sub(&u2, &u2, &v);               /* X3 = r^2-J-2*V */
    mv_fe_sub(&v, &v, &u2);
    mv_fe_mul(&v, &rr, &v);
    mv_fe_sub(&r->y, &v, &t);              /* Y3 = r*(V-X3)-2*Y1*J */
    r->x = u2;
    r->infinity = 0;
}

/* Two independent mixed additions, a1 += b1 and a2 += b2, with their field operations interleaved
 * so that the processor overlaps the two dependency chains (each madd alone is latency-bound).
 * Same formulas as mv_gej_add_ge; any special case (infinity, H = 0) is left to it. */
static void mv_gej_add_ge_2(mv_gej *a1, const mv_ge *b1, mv_gej *a2, const mv_ge *b2) {
    mv_fe z1z1_1, u2_1, s2_1, h_1, hh_1, i_1, j_1, rr_1, v_1, t_1;
    mv_fe z1z1_2, u2_2, s2_2, h_2, hh_2, i_2, j_2, rr_2, v_2, t_2;
    if (a1->infinity || a2->infinity) {
        mv_gej_add_ge(a1, a1, b1);
        mv_gej_add_ge(a2, a2, b2);
        return;
    }
    mv_fe_sqr(&z1z1_1, &a1->z);
    mv_fe_sqr(&z1z1_2, &a2->z);
    mv_fe_mul(&u2_1, &b1->x, &z1z1_1);
    mv_fe_mul(&u2_2, &b2->x, &z1z1_2);
    mv_fe_mul(&s2_1, &a1->z, &z1z1_1);
    mv_fe_mul(&s2_2, &a2->z, &z1z1_2);
    mv_fe_mul(&s2_1, &b1->y, &s2_1);
    mv_fe_mul(&s2_2, &b2->y, &s2_2);
    mv_fe_sub(&h_1, &u2_1, &a1->x);
    mv_fe_sub(&h_2, &u2_2, &a2->x);
    if (mv_fe_is_zero(&h_1) || mv_fe_is_zero(&h_2)) {
        mv_gej_add_ge(a1, a1, b1);
        mv_gej_add_ge(a2, a2, b2);
        return;
    }
    mv_fe_sub(&rr_1, &s2_1, &a1->y);
    mv_fe_sub(&rr_2, &s2_2, &a2->y);
    mv_fe_sqr(&hh_1, &h_1);
    mv_fe_sqr(&hh_2, &h_2);
    mv_fe_add(&i_1, &hh_1, &hh_1);
    mv_fe_add(&i_2, &hh_2, &hh_2);
    mv_fe_add(&i_1, &i_1, &i_1);
    mv_fe_add(&i_2, &i_2, &i_2);
    mv_fe_mul(&j_1, &h_1, &i_1);
    mv_fe_mul(&j_2, &h_2, &i_2);
    mv_fe_add(&rr_1, &rr_1, &rr_1);
    mv_fe_add(&rr_2, &rr_2, &rr_2);
    mv_fe_mul(&v_1, &a1->x, &i_1);
    mv_fe_mul(&v_2, &a2->x, &i_2);
    mv_fe_add(&t_1, &a1->z, &h_1);
    mv_fe_add(&t_2, &a2->z, &h_2);
    mv_fe_sqr(&t_1, &t_1);
    mv_fe_sqr(&t_2, &t_2);
    mv_fe_sub(&t_1, &t_1, &z1z1_1);
    mv_fe_sub(&t_2, &t_2, &z1z1_2);
    mv_fe_sub(&a1->z, &t_1, &hh_1);
    mv_fe_sub(&a2->z, &t_2, &hh_2);
    mv_fe_mul(&t_1, &a1->y, &j_1);
    mv_fe_mul(&t_2, &a2->y, &j_2);
    mv_fe_add(&t_1, &t_1, &t_1);
    mv_fe_add(&t_2, &t_2, &t_2);
    mv_fe_sqr(&u2_1, &rr_1);
    mv_fe_sqr(&u2_2, &rr_2);
    mv_fe_sub(&u2_1, &u2_1, &j_1);
    mv_fe_sub(&u2_2, &u2_2, &j_2);
    mv_fe_sub(&u2_1, &u2_1, &v_1);
    mv_fe_sub(&u2_2, &u2_2, &v_2);
    mv_fe_sub(&u2_1, &u2_1, &v_1);
    mv_fe_sub(&u2_2, &u2_2, &v_2);
    mv_fe_sub(&v_1, &v_1, &u2_1);
    mv_fe_sub(&v_2, &v_2, &u2_2);
    mv_fe_mul(&v_1, &rr_1, &v_1);
    mv_fe_mul(&v_2, &rr_2, &v_2);
    mv_fe_sub(&a1->y, &v_1, &t_1);
    mv_fe_sub(&a2->y, &v_2, &t_2);
    a1->x = u2_1;
    a2->x = u2_2;
}

/* r = a + b, both Jacobian (add-2007-bl). r may alias a or b. */
static void mv_gej_add(mv_gej *r, const mv_gej *a, const mv_gej *b) {
    mv_fe z1z1, z2z2, u1, u2, s1, s2, h, i, j, rr, v, t;
    if (a->infinity) {
        *r = *b;
        return;
    }
    if (b->infinity) {
        *r = *a;
        return;
    }
    mv_fe_sqr(&z1z1, &a->z);               /* Z1Z1 = Z1^2 */
    mv_fe_sqr(&z2z2, &b->z);               /* Z2Z2 = Z2^2 */
    mv_fe_mul(&u1, &a->x, &z2z2);          /* U1 = X1*Z2Z2 */
    mv_fe_mul(&u2, &b->x, &z1z1);          /* U2 = X2*Z1Z1 */
    mv_fe_mul(&s1, &b->z, &z2z2);
    mv_fe_mul(&s1, &a->y, &s1);            /* S1 = Y1*Z2*Z2Z2 */
    mv_fe_mul(&s2, &a->z, &z1z1);
    mv_fe_mul(&s2, &b->y, &s2);            /* S2 = Y2*Z1*Z1Z1 */
    mv_fe_sub(&h, &u2, &u1);               /* H = U2-U1 */
    mv_fe_sub(&rr, &s2, &s1);              /* S2-S1 */
    if (mv_fe_is_zero(&h)) {
        if (mv_fe_is_zero(&rr)) {
            mv_gej_double(r, a);           /* a == b */
        } else {
            mv_gej_set_infinity(r);        /* a == -b */
        }
        return;
    }
    mv_fe_add(&i, &h, &h);
    mv_fe_sqr(&i, &i);                     /* I = (2*H)^2 */
    mv_fe_mul(&j, &h, &i);                 /* J = H*I */
    mv_fe_add(&rr, &rr, &rr);              /* r = 2*(S2-S1) */
    mv_fe_mul(&v, &u1, &i);                /* V = U1*I */
    mv_fe_add(&t, &a->z, &b->z);
    mv_fe_sqr(&t, &t);
    mv_fe_sub(&t, &t, &z1z1);
    mv_fe_sub(&t, &t, &z2z2);
    mv_fe_mul(&r->z, &t, &h);              /* Z3 = ((Z1+Z2)^2-Z1Z1-Z2Z2)*H */
    mv_fe_mul(&s1, &s1, &j);
    mv_fe_add(&s1, &s1, &s1);              /* 2*S1*J */
    mv_fe_sqr(&t, &rr);
    mv_fe_sub(&t, &t, &j);
    mv_fe_sub(&t, &t, &v);
    mv_fe_sub(&t, &t, &v);                 /* X3 = r^2-J-2*V */
    mv_fe_sub(&v, &v, &t);
    mv_fe_mul(&v, &rr, &v);
    mv_fe_sub(&r->y, &v, &s1);             /* Y3 = r*(V-X3)-2*S1*J */
    r->x = t;
    r->infinity = 0;
}

#endif /* MV_GROUP_IMPL_H */
