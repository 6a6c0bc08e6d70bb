/* manverify native engine: ES256 verification with per-key precomputed tables.
 *
 * Field and scalar elements are 4 little-endian 64-bit limbs in Montgomery form (R = 2^256).
 * Points use Jacobian coordinates (X/Z^2, Y/Z^3; Z = 0 is infinity) while accumulating, and
 * affine coordinates in tables so every addition is a mixed one.
 *
 * Tables: for a point P and w = 7, window i (0..36) holds k * 2^(7i) * P for k = 1..64, so a
 * scalar recoded into 37 signed digits d_i in [-64, 64] gives k*P = sum_i sign(d_i) T[i][|d_i|-1]
 * with no doubling at all. Verification adds the G and Q sums (at most 74 mixed additions) and
 * compares x(R) with r without leaving Jacobian coordinates: r * Z^2 == X (mod p), or
 * (r + n) * Z^2 == X when r + n < p.
 *
 * Only public data passes through here (keys, messages, signatures), so the code is variable
 * time by choice. Every input length is checked; nothing is allocated; there is no global state.
 */
#include <stdint.h>
#include <string.h>

#include "mv.h"

typedef unsigned __int128 u128;

#define MV_W 7
#define MV_WINDOWS 37            /* ceil(257 / 7): signed recoding may carry into bit 256 */
#define MV_ENTRIES 64            /* 2^(w-1) */
#define MV_POINTS (MV_WINDOWS * MV_ENTRIES)
#define MV_HEADER 64
#define MV_MAGIC 0x3154323536505643ULL /* "CVP256T1" */
#define MV_VERSION 1

typedef struct { uint64_t x[4], y[4]; } aff;
typedef struct { uint64_t X[4], Y[4], Z[4]; } jac;

static const uint64_t P[4] = {0xffffffffffffffffULL, 0x00000000ffffffffULL, 0x0000000000000000ULL,
                              0xffffffff00000001ULL};
static const uint64_t N[4] = {0xf3b9cac2fc632551ULL, 0xbce6faada7179e84ULL, 0xffffffffffffffffULL,
                              0xffffffff00000000ULL};
static const uint64_t N0INV = 0xccd1c8aaee00bc4fULL; /* -n^-1 mod 2^64; for p it is 1 */
static const uint64_t R2P[4] = {0x0000000000000003ULL, 0xfffffffbffffffffULL, 0xfffffffffffffffeULL,
                                0x00000004fffffffdULL};
static const uint64_t R2N[4] = {0x83244c95be79eea2ULL, 0x4699799c49bd6fa6ULL, 0x2845b2392b6bec59ULL,
                                0x66e12d94f3d95620ULL};
static const uint64_t ONE_P[4] = {0x0000000000000001ULL, 0xffffffff00000000ULL, 0xffffffffffffffffULL,
                                  0x00000000fffffffeULL}; /* R mod p: 1 in Montgomery form */
static const uint64_t B_M[4] = {0xd89cdf6229c4bddfULL, 0xacf005cd78843090ULL, 0xe5a220abf7212ed6ULL,
                                0xdc30061d04874834ULL}; /* curve b in Montgomery form */

/* ------------------------------------------------------------------ 256-bit integers */

static uint64_t add4(uint64_t r[4], const uint64_t a[4], const uint64_t b[4]) {
    u128 c = 0;
    for (int i = 0; i < 4; i++) {
        c += (u128)a[i] + b[i];
        r[i] = (uint64_t)c;
        c >>= 64;
    }
    return (uint64_t)c;
}

static uint64_t sub4(uint64_t r[4], const uint64_t a[4], const uint64_t b[4]) {
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        u128 d = (u128)a[i] - b[i] - borrow;
        r[i] = (uint64_t)d;
        borrow = (uint64_t)(d >> 64) & 1;
    }
    return borrow;
}

static int cmp4(const uint64_t a[4], const uint64_t b[4]) {
    for (int i = 3; i >= 0; i--) {
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    }
    return 0;
}

static int is_zero4(const uint64_t a[4]) { return (a[0] | a[1] | a[2] | a[3]) == 0; }

static void from_be(uint64_t r[4], const unsigned char *b32) {
    for (int i = 0; i < 4; i++) {
        uint64_t v = 0;
        for (int j = 0; j < 8; j++) v = (v << 8) | b32[(3 - i) * 8 + j];
        r[i] = v;
    }
}

static void to_be(unsigned char *b32, const uint64_t a[4]) {
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 8; j++) b32[(3 - i) * 8 + j] = (unsigned char)(a[i] >> (56 - 8 * j));
    }
}

/* Montgomery multiplication (CIOS): r = a * b / 2^256 mod m, for a, b < m. */
static void mont_mul(uint64_t r[4], const uint64_t a[4], const uint64_t b[4], const uint64_t m[4],
                     uint64_t n0) {
    uint64_t t[6] = {0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        u128 c = 0;
        for (int j = 0; j < 4; j++) {
            c += (u128)a[j] * b[i] + t[j];
            t[j] = (uint64_t)c;
            c >>= 64;
        }
        c += t[4];
        t[4] = (uint64_t)c;
        t[5] = (uint64_t)(c >> 64);
        uint64_t q = t[0] * n0;
        c = ((u128)q * m[0] + t[0]) >> 64;
        for (int j = 1; j < 4; j++) {
            c += (u128)q * m[j] + t[j];
            t[j - 1] = (uint64_t)c;
            c >>= 64;
        }
        c += t[4];
        t[3] = (uint64_t)c;
        t[4] = t[5] + (uint64_t)(c >> 64);
    }
    uint64_t s[4];
    uint64_t borrow = sub4(s, t, m);
    if (t[4] || !borrow) memcpy(r, s, 32);
    else memcpy(r, t, 32);
}

/* ------------------------------------------------------------------ field mod p */

/* Montgomery multiplication specialised for p = 2^256 - 2^224 + 2^192 + 2^96 - 1: with
 * -p^-1 = 1 mod 2^64 the quotient digit is the low limb itself; p[0] = 2^64 - 1 turns that limb
 * into a carry, and p[2] = 0 drops a product: 2 multiplications per reduction step instead of 4. */
static void fe_mul(uint64_t r[4], const uint64_t a[4], const uint64_t b[4]) {
    uint64_t c[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        u128 acc = 0;
        for (int j = 0; j < 4; j++) {
            acc += (u128)a[j] * b[i] + c[i + j];
            c[i + j] = (uint64_t)acc;
            acc >>= 64;
        }
        c[i + 4] = (uint64_t)acc;
    }
    uint64_t top = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t q = c[i];
        u128 acc = (u128)c[i + 1] + q + (u128)q * 0x00000000ffffffffULL;
        c[i + 1] = (uint64_t)acc;
        acc >>= 64;
        acc += c[i + 2];
        c[i + 2] = (uint64_t)acc;
        acc >>= 64;
        acc += (u128)q * 0xffffffff00000001ULL + c[i + 3];
        c[i + 3] = (uint64_t)acc;
        acc >>= 64;
        for (int j = i + 4; j < 8; j++) {
            acc += c[j];
            c[j] = (uint64_t)acc;
            acc >>= 64;
        }
        top += (uint64_t)acc;
    }
    uint64_t s[4];
    uint64_t borrow = sub4(s, c + 4, P);
    if (top || !borrow) memcpy(r, s, 32);
    else memcpy(r, c + 4, 32);
}

static void fe_sqr(uint64_t r[4], const uint64_t a[4]) { fe_mul(r, a, a); }

static void fe_add(uint64_t r[4], const uint64_t a[4], const uint64_t b[4]) {
    uint64_t t[4], s[4];
    uint64_t carry = add4(t, a, b);
    uint64_t borrow = sub4(s, t, P);
    if (carry || !borrow) memcpy(r, s, 32);
    else memcpy(r, t, 32);
}

static void fe_sub(uint64_t r[4], const uint64_t a[4], const uint64_t b[4]) {
    uint64_t t[4];
    if (sub4(t, a, b)) add4(t, t, P);
    memcpy(r, t, 32);
}

static void fe_neg(uint64_t r[4], const uint64_t a[4]) {
    if (is_zero4(a)) memset(r, 0, 32);
    else sub4(r, P, a);
}

static void fe_to_mont(uint64_t r[4], const uint64_t a[4]) { fe_mul(r, a, R2P); }

static void fe_from_mont(uint64_t r[4], const uint64_t a[4]) {
    static const uint64_t one[4] = {1, 0, 0, 0};
    fe_mul(r, a, one);
}

/* a^(p-2): Fermat inversion, only used when building tables. */
static void fe_inv(uint64_t r[4], const uint64_t a[4]) {
    static const uint64_t e[4] = {0xfffffffffffffffdULL, 0x00000000ffffffffULL, 0x0000000000000000ULL,
                                  0xffffffff00000001ULL};
    uint64_t acc[4];
    memcpy(acc, ONE_P, 32);
    for (int i = 255; i >= 0; i--) {
        fe_sqr(acc, acc);
        if ((e[i / 64] >> (i % 64)) & 1) fe_mul(acc, acc, a);
    }
    memcpy(r, acc, 32);
}

/* ------------------------------------------------------------------ scalars mod n */

static void sc_mul(uint64_t r[4], const uint64_t a[4], const uint64_t b[4]) { mont_mul(r, a, b, N, N0INV); }

/* a^-1 mod n for 0 < a < n: binary extended Euclid, variable time (public data only). */
static void shr1(uint64_t x[4], uint64_t top) {
    x[0] = (x[0] >> 1) | (x[1] << 63);
    x[1] = (x[1] >> 1) | (x[2] << 63);
    x[2] = (x[2] >> 1) | (x[3] << 63);
    x[3] = (x[3] >> 1) | (top << 63);
}

static void halve_mod_n(uint64_t x[4]) {
    uint64_t carry = 0;
    if (x[0] & 1) carry = add4(x, x, N);
    shr1(x, carry);
}

static void sub_mod_n(uint64_t r[4], const uint64_t a[4], const uint64_t b[4]) {
    if (sub4(r, a, b)) add4(r, r, N);
}

static int is_one4(const uint64_t a[4]) { return a[0] == 1 && (a[1] | a[2] | a[3]) == 0; }

static void sc_inv_var(uint64_t r[4], const uint64_t a[4]) {
    uint64_t u[4], v[4], x1[4] = {1, 0, 0, 0}, x2[4] = {0, 0, 0, 0};
    memcpy(u, a, 32);
    memcpy(v, N, 32);
    while (!is_one4(u) && !is_one4(v)) {
        while (!(u[0] & 1)) {
            shr1(u, 0);
            halve_mod_n(x1);
        }
        while (!(v[0] & 1)) {
            shr1(v, 0);
            halve_mod_n(x2);
        }
        if (cmp4(u, v) >= 0) {
            sub4(u, u, v);
            sub_mod_n(x1, x1, x2);
        } else {
            sub4(v, v, u);
            sub_mod_n(x2, x2, x1);
        }
    }
    memcpy(r, is_one4(u) ? x1 : x2, 32);
}

/* ------------------------------------------------------------------ points */

static void jac_set_inf(jac *r) { memset(r, 0, sizeof *r); }
static int jac_is_inf(const jac *a) { return is_zero4(a->Z); }

/* dbl-2001-b (a = -3). */
static void jac_dbl(jac *r, const jac *a) {
    uint64_t delta[4], gamma[4], beta[4], alpha[4], t1[4], t2[4], t3[4];
    if (jac_is_inf(a)) { jac_set_inf(r); return; }
    fe_sqr(delta, a->Z);
    fe_sqr(gamma, a->Y);
    fe_mul(beta, a->X, gamma);
    fe_sub(t1, a->X, delta);
    fe_add(t2, a->X, delta);
    fe_mul(t1, t1, t2);
    fe_add(alpha, t1, t1);
    fe_add(alpha, alpha, t1);
    /* Z3 = (Y + Z)^2 - gamma - delta */
    fe_add(t3, a->Y, a->Z);
    fe_sqr(t3, t3);
    fe_sub(t3, t3, gamma);
    fe_sub(r->Z, t3, delta);
    /* X3 = alpha^2 - 8 beta */
    fe_add(t1, beta, beta);   /* 2b */
    fe_add(t1, t1, t1);       /* 4b */
    fe_add(t2, t1, t1);       /* 8b */
    fe_sqr(t3, alpha);
    fe_sub(r->X, t3, t2);
    /* Y3 = alpha (4 beta - X3) - 8 gamma^2 */
    fe_sub(t1, t1, r->X);
    fe_mul(t1, alpha, t1);
    fe_sqr(t2, gamma);
    fe_add(t2, t2, t2);
    fe_add(t2, t2, t2);
    fe_add(t2, t2, t2);
    fe_sub(r->Y, t1, t2);
}

/* madd-2007-bl: r = a + b with b affine (never infinity). r may alias a. */
static void jac_madd(jac *r, const jac *a, const uint64_t bx[4], const uint64_t by[4]) {
    uint64_t z1z1[4], u2[4], s2[4], h[4], hh[4], i4[4], j[4], rr[4], v[4], t[4];
    if (jac_is_inf(a)) {
        memcpy(r->X, bx, 32);
        memcpy(r->Y, by, 32);
        memcpy(r->Z, ONE_P, 32);
        return;
    }
    fe_sqr(z1z1, a->Z);
    fe_mul(u2, bx, z1z1);
    fe_mul(s2, by, a->Z);
    fe_mul(s2, s2, z1z1);
    fe_sub(h, u2, a->X);
    fe_sub(rr, s2, a->Y);
    if (is_zero4(h)) {
        if (is_zero4(rr)) jac_dbl(r, a);  /* same point */
        else jac_set_inf(r);              /* opposite points */
        return;
    }
    fe_add(rr, rr, rr);
    fe_sqr(hh, h);
    fe_add(i4, hh, hh);
    fe_add(i4, i4, i4);
    fe_mul(j, h, i4);
    fe_mul(v, a->X, i4);
    /* Z3 = (Z1 + H)^2 - Z1Z1 - HH (computed before X1, Y1 may be overwritten) */
    uint64_t z3[4];
    fe_add(z3, a->Z, h);
    fe_sqr(z3, z3);
    fe_sub(z3, z3, z1z1);
    fe_sub(z3, z3, hh);
    /* Y1 * J needed after X3 is written */
    uint64_t y1j[4];
    fe_mul(y1j, a->Y, j);
    /* X3 = r^2 - J - 2V */
    fe_sqr(t, rr);
    fe_sub(t, t, j);
    fe_sub(t, t, v);
    fe_sub(r->X, t, v);
    /* Y3 = r (V - X3) - 2 Y1 J */
    fe_sub(t, v, r->X);
    fe_mul(t, rr, t);
    fe_add(y1j, y1j, y1j);
    fe_sub(r->Y, t, y1j);
    memcpy(r->Z, z3, 32);
}

/* y^2 == x^3 - 3x + b, coordinates in Montgomery form. */
static int on_curve(const uint64_t x[4], const uint64_t y[4]) {
    uint64_t lhs[4], rhs[4], t[4];
    fe_sqr(lhs, y);
    fe_sqr(rhs, x);
    fe_mul(rhs, rhs, x);
    fe_add(t, x, x);
    fe_add(t, t, x);
    fe_sub(rhs, rhs, t);
    fe_add(rhs, rhs, B_M);
    return cmp4(lhs, rhs) == 0;
}

/* ------------------------------------------------------------------ scalar recoding */

/* k (4 limbs, < 2^256) into 37 signed digits in [-64, 64], k = sum d_i 2^(7i). */
static void recode(int8_t d[MV_WINDOWS], const uint64_t k[4]) {
    int carry = 0;
    for (int i = 0; i < MV_WINDOWS; i++) {
        int bit = i * MV_W;
        uint64_t bits = 0;
        if (bit < 256) {
            int limb = bit / 64, off = bit % 64;
            bits = k[limb] >> off;
            if (off > 64 - MV_W && limb < 3) bits |= k[limb + 1] << (64 - off);
            bits &= (1u << MV_W) - 1;
        }
        int v = (int)bits + carry;
        if (v > MV_ENTRIES) {
            d[i] = (int8_t)(v - (1 << MV_W));
            carry = 1;
        } else {
            d[i] = (int8_t)v;
            carry = 0;
        }
    }
}

/* ------------------------------------------------------------------ tables */

typedef struct {
    uint64_t magic;
    uint64_t version;
    uint64_t pad[6];
} header;

static const aff *table_points(const unsigned char *table) {
    return (const aff *)(const void *)(table + MV_HEADER);
}

static int table_ok(const unsigned char *table) {
    if (table == NULL || ((uintptr_t)table & 7) != 0) return 0;
    const header *h = (const header *)(const void *)table;
    return h->magic == MV_MAGIC && h->version == MV_VERSION;
}

static void table_add(jac *acc, const aff *t, const int8_t d[MV_WINDOWS]) {
    for (int i = 0; i < MV_WINDOWS; i++) {
        int v = d[i];
        if (v == 0) continue;
        const aff *e = &t[i * MV_ENTRIES + (v > 0 ? v : -v) - 1];
        if (v > 0) {
            jac_madd(acc, acc, e->x, e->y);
        } else {
            uint64_t ny[4];
            fe_neg(ny, e->y);
            jac_madd(acc, acc, e->x, ny);
        }
    }
}

size_t mv_table_size(void) { return MV_HEADER + (size_t)MV_POINTS * sizeof(aff); }
size_t mv_scratch_size(void) { return (size_t)MV_POINTS * 2 * 32; }
int mv_version(void) { return MV_VERSION; }

/* Parse and validate 0x04 || X || Y into Montgomery-form affine coordinates. */
static int load_point(uint64_t x[4], uint64_t y[4], const unsigned char *point65, size_t point_len) {
    if (point65 == NULL || point_len != 65 || point65[0] != 0x04) return MV_EPOINT;
    uint64_t px[4], py[4];
    from_be(px, point65 + 1);
    from_be(py, point65 + 33);
    if (cmp4(px, P) >= 0 || cmp4(py, P) >= 0) return MV_EPOINT;
    fe_to_mont(x, px);
    fe_to_mont(y, py);
    /* (0, 0) is not on the curve (b != 0), so no separate infinity check is needed. */
    if (!on_curve(x, y)) return MV_EPOINT;
    return MV_OK;
}

int mv_key_load(unsigned char *table, size_t table_len, unsigned char *scratch, size_t scratch_len,
                const unsigned char *point65, size_t point_len) {
    if (table == NULL || scratch == NULL || table_len != mv_table_size() ||
        scratch_len != mv_scratch_size() || ((uintptr_t)table & 7) != 0 || ((uintptr_t)scratch & 7) != 0)
        return MV_EARG;
    header *h = (header *)(void *)table;
    memset(h, 0, sizeof *h);
    aff base;
    int rc = load_point(base.x, base.y, point65, point_len);
    if (rc != MV_OK) return rc;

    aff *out = (aff *)(void *)(table + MV_HEADER);
    uint64_t (*z)[4] = (uint64_t (*)[4])(void *)scratch;            /* Z of every entry */
    uint64_t (*pre)[4] = (uint64_t (*)[4])(void *)(scratch + (size_t)MV_POINTS * 32); /* prefix products */

    /* Window bases B_i = 2^(7i) P, each made affine (one inversion for all 37). */
    jac b;
    memcpy(b.X, base.x, 32);
    memcpy(b.Y, base.y, 32);
    memcpy(b.Z, ONE_P, 32);
    jac bases[MV_WINDOWS];
    for (int i = 0; i < MV_WINDOWS; i++) {
        bases[i] = b;
        for (int k = 0; k < MV_W; k++) jac_dbl(&b, &b);
    }
    aff abase[MV_WINDOWS];
    {
        uint64_t acc[4], inv[4], t[4];
        uint64_t bp[MV_WINDOWS][4];
        memcpy(acc, ONE_P, 32);
        for (int i = 0; i < MV_WINDOWS; i++) {
            memcpy(bp[i], acc, 32);
            fe_mul(acc, acc, bases[i].Z);
        }
        fe_inv(inv, acc);
        for (int i = MV_WINDOWS - 1; i >= 0; i--) {
            uint64_t zi[4], zi2[4];
            fe_mul(zi, inv, bp[i]);          /* 1 / Z_i */
            fe_mul(inv, inv, bases[i].Z);
            fe_sqr(zi2, zi);
            fe_mul(abase[i].x, bases[i].X, zi2);
            fe_mul(t, zi2, zi);
            fe_mul(abase[i].y, bases[i].Y, t);
        }
    }
    /* Multiples k * B_i, k = 1..64, in Jacobian: X, Y straight into the table, Z aside. */
    for (int i = 0; i < MV_WINDOWS; i++) {
        jac acc;
        memcpy(acc.X, abase[i].x, 32);
        memcpy(acc.Y, abase[i].y, 32);
        memcpy(acc.Z, ONE_P, 32);
        for (int k = 0; k < MV_ENTRIES; k++) {
            if (k > 0) jac_madd(&acc, &acc, abase[i].x, abase[i].y);
            int idx = i * MV_ENTRIES + k;
            memcpy(out[idx].x, acc.X, 32);
            memcpy(out[idx].y, acc.Y, 32);
            memcpy(z[idx], acc.Z, 32);  /* never zero: k * 2^(7i) is not a multiple of n */
        }
    }
    /* Montgomery's trick: all Z inverted with one field inversion. */
    uint64_t acc[4], inv[4];
    memcpy(acc, ONE_P, 32);
    for (int idx = 0; idx < MV_POINTS; idx++) {
        memcpy(pre[idx], acc, 32);
        fe_mul(acc, acc, z[idx]);
    }
    if (is_zero4(acc)) return MV_EPOINT;  /* unreachable for a point of prime order */
    fe_inv(inv, acc);
    for (int idx = MV_POINTS - 1; idx >= 0; idx--) {
        uint64_t zi[4], zi2[4], zi3[4];
        fe_mul(zi, inv, pre[idx]);
        fe_mul(inv, inv, z[idx]);
        fe_sqr(zi2, zi);
        fe_mul(zi3, zi2, zi);
        fe_mul(out[idx].x, out[idx].x, zi2);
        fe_mul(out[idx].y, out[idx].y, zi3);
    }
    h->version = MV_VERSION;
    h->magic = MV_MAGIC;
    return MV_OK;
}

/* ------------------------------------------------------------------ verification */

int mv_sha256_raw(unsigned char out[32], const unsigned char *msg, size_t len);

typedef struct {
    uint64_t r[4], s[4], e[4];
} sigparts;

/* 1 ok, 0 invalid (r or s out of [1, n-1]). */
static int parse(sigparts *p, const unsigned char *msg, size_t msg_len, const unsigned char *sig64) {
    from_be(p->r, sig64);
    from_be(p->s, sig64 + 32);
    if (is_zero4(p->r) || is_zero4(p->s) || cmp4(p->r, N) >= 0 || cmp4(p->s, N) >= 0) return 0;
    unsigned char h[32];
    mv_sha256_raw(h, msg, msg_len);
    from_be(p->e, h);
    if (cmp4(p->e, N) >= 0) sub4(p->e, p->e, N);
    return 1;
}

/* With w = s^-1 in Montgomery form: the ECDSA check proper. */
static int finish(const aff *gt, const aff *qt, const sigparts *p, const uint64_t wM[4]) {
    uint64_t u1[4], u2[4];
    sc_mul(u1, p->e, wM);  /* e * s^-1 * R / R = e / s, plain */
    sc_mul(u2, p->r, wM);
    int8_t d1[MV_WINDOWS], d2[MV_WINDOWS];
    recode(d1, u1);
    recode(d2, u2);
    jac acc;
    jac_set_inf(&acc);
    table_add(&acc, gt, d1);
    table_add(&acc, qt, d2);
    if (jac_is_inf(&acc)) return MV_INVALID;
    uint64_t z2[4], rm[4], t[4];
    fe_sqr(z2, acc.Z);
    fe_to_mont(rm, p->r);
    fe_mul(t, rm, z2);
    if (cmp4(t, acc.X) == 0) return MV_VALID;
    /* x(R) may be in [n, p): then x(R) mod n = r means x(R) = r + n. */
    uint64_t rn[4];
    if (add4(rn, p->r, N) == 0 && cmp4(rn, P) < 0) {
        fe_to_mont(rm, rn);
        fe_mul(t, rm, z2);
        if (cmp4(t, acc.X) == 0) return MV_VALID;
    }
    return MV_INVALID;
}

int mv_verify(const unsigned char *gtable, const unsigned char *qtable, const unsigned char *msg,
              size_t msg_len, const unsigned char *sig64, size_t sig_len) {
    if (!table_ok(gtable) || !table_ok(qtable)) return MV_ETABLE;
    if ((msg == NULL && msg_len != 0) || sig64 == NULL) return MV_EARG;
    if (sig_len != 64) return MV_INVALID;
    sigparts p;
    if (!parse(&p, msg, msg_len, sig64)) return MV_INVALID;
    uint64_t w[4], wM[4];
    sc_inv_var(w, p.s);
    sc_mul(wM, w, R2N);  /* s^-1 in Montgomery form */
    return finish(table_points(gtable), table_points(qtable), &p, wM);
}

#define MV_BATCH_CHUNK 64

int mv_verify_batch(const unsigned char *gtable, const unsigned char *const *qtables,
                    const unsigned char *const *msgs, const size_t *msg_lens,
                    const unsigned char *const *sigs, int *out, size_t n) {
    if (!table_ok(gtable)) return MV_ETABLE;
    if (n == 0) return MV_OK;
    if (qtables == NULL || msgs == NULL || msg_lens == NULL || sigs == NULL || out == NULL) return MV_EARG;
    const aff *gt = table_points(gtable);
    for (size_t base = 0; base < n; base += MV_BATCH_CHUNK) {
        size_t m = n - base < MV_BATCH_CHUNK ? n - base : MV_BATCH_CHUNK;
        sigparts p[MV_BATCH_CHUNK];
        uint64_t sM[MV_BATCH_CHUNK][4], pre[MV_BATCH_CHUNK][4];
        int live[MV_BATCH_CHUNK];
        /* One inversion for the chunk (Montgomery's trick over the valid s values). */
        uint64_t acc[4];
        sc_mul(acc, R2N, (const uint64_t[4]){1, 0, 0, 0});
        for (size_t i = 0; i < m; i++) {
            size_t k = base + i;
            live[i] = 0;
            if (!table_ok(qtables[k])) { out[k] = MV_ETABLE; continue; }
            if (sigs[k] == NULL || (msgs[k] == NULL && msg_lens[k] != 0)) { out[k] = MV_EARG; continue; }
            if (!parse(&p[i], msgs[k], msg_lens[k], sigs[k])) { out[k] = MV_INVALID; continue; }
            live[i] = 1;
            sc_mul(sM[i], p[i].s, R2N);
            memcpy(pre[i], acc, 32);
            sc_mul(acc, acc, sM[i]);
        }
        uint64_t inv[4];
        {
            /* acc = prod(s) * R (Montgomery); invert the plain product, back to Montgomery. */
            uint64_t plain[4], pinv[4];
            sc_mul(plain, acc, (const uint64_t[4]){1, 0, 0, 0});
            sc_inv_var(pinv, plain);
            sc_mul(inv, pinv, R2N);
        }
        for (size_t j = m; j-- > 0;) {
            if (!live[j]) continue;
            uint64_t wM[4];
            sc_mul(wM, inv, pre[j]);
            sc_mul(inv, inv, sM[j]);
            out[base + j] = finish(gt, table_points(qtables[base + j]), &p[j], wM);
        }
    }
    return MV_OK;
}

/* ------------------------------------------------------------------ test hooks */

static void jac_out(unsigned char *out65, const jac *a) {
    uint64_t zi[4], zi2[4], zi3[4], x[4], y[4];
    fe_inv(zi, a->Z);
    fe_sqr(zi2, zi);
    fe_mul(zi3, zi2, zi);
    fe_mul(x, a->X, zi2);
    fe_mul(y, a->Y, zi3);
    fe_from_mont(x, x);
    fe_from_mont(y, y);
    out65[0] = 0x04;
    to_be(out65 + 1, x);
    to_be(out65 + 33, y);
}

int mv_table_mul(unsigned char *out65, const unsigned char *table, const unsigned char *k32) {
    if (out65 == NULL || k32 == NULL) return MV_EARG;
    if (!table_ok(table)) return MV_ETABLE;
    uint64_t k[4];
    from_be(k, k32);
    int8_t d[MV_WINDOWS];
    recode(d, k);
    jac acc;
    jac_set_inf(&acc);
    table_add(&acc, table_points(table), d);
    if (jac_is_inf(&acc)) { memset(out65, 0, 65); return 1; }
    jac_out(out65, &acc);
    return 0;
}

int mv_naive_mul(unsigned char *out65, const unsigned char *point65, const unsigned char *k32) {
    if (out65 == NULL || k32 == NULL) return MV_EARG;
    aff pt;
    int rc = load_point(pt.x, pt.y, point65, 65);
    if (rc != MV_OK) return rc;
    uint64_t k[4];
    from_be(k, k32);
    jac acc;
    jac_set_inf(&acc);
    for (int i = 255; i >= 0; i--) {
        jac_dbl(&acc, &acc);
        if ((k[i / 64] >> (i % 64)) & 1) jac_madd(&acc, &acc, pt.x, pt.y);
    }
    if (jac_is_inf(&acc)) { memset(out65, 0, 65); return 1; }
    jac_out(out65, &acc);
    return 0;
}

int mv_sha256(unsigned char *out32, const unsigned char *msg, size_t msg_len) {
    if (out32 == NULL || (msg == NULL && msg_len != 0)) return MV_EARG;
    return mv_sha256_raw(out32, msg, msg_len);
}
