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

#endif /* MV_GROUP_IMPL_H */
