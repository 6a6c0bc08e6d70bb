/* SPDX-License-Identifier: Apache-2.0
 *
 * manverify native ES256 engine: the only translation unit. It includes every *_impl.h so all
 * internals are static; the mv_* functions declared in mv_native.h are the whole ABI.
 *
 * ECDSA verification (SEC 1 v2 §4.1.4) with raw r||s:
 *   reject unless 0 < r, s < n; e = SHA-256(msg) mod n; w = s^-1; u1 = e·w; u2 = r·w;
 *   R = u1·G + u2·Q (G and Q each from a precomputed table: additions only);
 *   accept iff R != infinity and x(R) mod n == r. Since x(R) = X/Z^2 < p < 2n, that is
 *   r·Z^2 == X or, when r + n < p, (r + n)·Z^2 == X: no inversion needed.
 */
#include "mv_native.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "field_impl.h"
#include "scalar_impl.h"
#include "group_impl.h"
#include "ecmult_impl.h"
#include "sha256_impl.h"

#define MV_VERSION "0.1.0"

/* Key table layout (uint64_t words): a header, then MV_TABLE_LIMBS words of affine points. */
#define MV_TABLE_MAGIC 0x6d765032353654ULL /* "mvP256T" */
#define MV_HEADER_WORDS 16                 /* magic, params, x and y big-endian (8 words), spare */
#define MV_TABLE_BYTES ((MV_HEADER_WORDS + MV_TABLE_LIMBS) * sizeof(uint64_t))
#define MV_PARAMS ((uint64_t)MV_W << 8 | (uint64_t)MV_WINDOWS)

/* Once-built, then read-only: the G table and the SHA-256 implementation chosen for this CPU. */
static pthread_once_t mv_once = PTHREAD_ONCE_INIT;
static uint64_t mv_gtable[MV_TABLE_LIMBS];
static mv_sha256_blocks_fn mv_sha_blocks = mv_sha256_blocks_portable;
static int mv_feature_bits = 0;

static const unsigned char MV_G_X[32] = {
    0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
    0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96};
static const unsigned char MV_G_Y[32] = {
    0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
    0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5};

#if defined(MV_HAVE_SHANI_CODE)
#include <cpuid.h>
static int mv_cpu_has_shani(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 9)) || !(c & (1u << 19))) return 0; /* SSSE3, SSE4.1 */
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1;                                /* SHA */
}
#endif

#if defined(MV_HAVE_ADX_CODE)
#include <cpuid.h>
static int mv_cpu_has_adx(void) {
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return ((b >> 8) & 1) && ((b >> 19) & 1);            /* BMI2 (mulx), ADX (adcx/adox) */
}
#endif

static void mv_init_once(void) {
    mv_ge g;
#if defined(MV_HAVE_ADX_CODE)
    if (mv_cpu_has_adx()) {
        mv_use_adx = 1;
        mv_feature_bits |= MV_FEATURE_ADX;
    }
#endif
    mv_fe_set_be(&g.x, MV_G_X);
    mv_fe_set_be(&g.y, MV_G_Y);
    mv_table_build(mv_gtable, &g);
#if defined(MV_HAVE_SHANI_CODE)
    if (mv_cpu_has_shani()) {
        mv_sha_blocks = mv_sha256_blocks_shani;
        mv_feature_bits |= MV_FEATURE_SHANI;
    }
#endif
}

static inline void mv_init(void) { (void)pthread_once(&mv_once, mv_init_once); }

/* The table words, or NULL (with *err set) if table is not a loaded key table. */
static const uint64_t *mv_table_words(const unsigned char *table, size_t table_len, int *err) {
    const uint64_t *w;
    if (table == NULL || table_len != MV_TABLE_BYTES) {
        *err = MV_ERR_ARG;
        return NULL;
    }
    if (((uintptr_t)table & 7) != 0) {
        *err = MV_ERR_ALIGN;
        return NULL;
    }
    w = (const uint64_t *)(const void *)table;
    if (w[0] != MV_TABLE_MAGIC || w[1] != MV_PARAMS) {
        *err = MV_ERR_TABLE;
        return NULL;
    }
    return w;
}

/* 65-byte uncompressed point of a finite Jacobian point; r must not be infinity. */
static void mv_gej_to_bytes(unsigned char *out65, const mv_gej *a) {
    mv_fe zi, zi2, x, y;
    mv_fe_inv(&zi, &a->z);
    mv_fe_sqr(&zi2, &zi);
    mv_fe_mul(&x, &a->x, &zi2);
    mv_fe_mul(&zi2, &zi2, &zi);
    mv_fe_mul(&y, &a->y, &zi2);
    out65[0] = 4;
    mv_fe_get_be(out65 + 1, &x);
    mv_fe_get_be(out65 + 33, &y);
}

/* ---------------------------------------------------------------------------------- the ABI */

const char *mv_version(void) { return MV_VERSION; }

int mv_features(void) {
    mv_init();
    return mv_feature_bits;
}

size_t mv_table_size(void) { return MV_TABLE_BYTES; }

int mv_key_load(unsigned char *table, size_t table_len, const unsigned char *point65, size_t point_len) {
    uint64_t *w;
    mv_ge q;
    if (table == NULL || table_len != MV_TABLE_BYTES || point65 == NULL) return MV_ERR_ARG;
    if (((uintptr_t)table & 7) != 0) return MV_ERR_ALIGN;
    w = (uint64_t *)(void *)table;
    w[0] = 0; /* unusable until complete */
    if (point_len != 65 || point65[0] != 0x04) return MV_ERR_POINT;
    if (!mv_fe_set_be(&q.x, point65 + 1) || !mv_fe_set_be(&q.y, point65 + 33)) return MV_ERR_POINT;
    if (!mv_ge_on_curve(&q)) return MV_ERR_POINT;
    /* A point on the curve with coordinates < p is finite and, n being prime with cofactor 1,
     * of order n: nothing else to check. */
    mv_init();
    memset(w, 0, MV_HEADER_WORDS * sizeof(uint64_t));
    memcpy(w + 2, point65 + 1, 64);
    mv_table_build(w + MV_HEADER_WORDS, &q);
    w[1] = MV_PARAMS;
    w[0] = MV_TABLE_MAGIC;
    return MV_INVALID;
}

int mv_key_point(unsigned char *point65, size_t point_len, const unsigned char *table, size_t table_len) {
    int err = 0;
    const uint64_t *w = mv_table_words(table, table_len, &err);
    if (w == NULL) return err;
    if (point65 == NULL || point_len != 65) return MV_ERR_ARG;
    point65[0] = 4;
    memcpy(point65 + 1, w + 2, 64);
    return 0;
}

/* The verification itself, on checked arguments. */
static int mv_verify_core(const uint64_t *tq, const unsigned char *msg, size_t msg_len,
                          const unsigned char *sig64) {
    unsigned char h[32];
    mv_sc r, s, e, w, u1, u2;
    int d1[MV_WINDOWS], d2[MV_WINDOWS];
    mv_gej R;
    mv_fe zz, rf, t;
    uint64_t rn[4];
    mv_u128 c;
    int i;

    if (!mv_sc_set_be_nonzero(&r, sig64) || !mv_sc_set_be_nonzero(&s, sig64 + 32)) return MV_INVALID;
    mv_sha256(h, msg, msg_len, mv_sha_blocks);
    mv_sc_set_be_reduce(&e, h);
    mv_sc_mul(&w, &s, &MV_SC_R2);   /* s·R          */
    mv_sc_inv_mont(&w, &w);         /* s^-1·R       */
    mv_sc_mul(&u1, &e, &w);         /* e·s^-1       */
    mv_sc_mul(&u2, &r, &w);         /* r·s^-1       */
    mv_recode(d1, u1.d);
    mv_recode(d2, u2.d);
    mv_ecmult_tables(&R, mv_gtable, d1, tq, d2);
    if (R.infinity) return MV_INVALID;

    mv_fe_sqr(&zz, &R.z);
    memcpy(rf.d, r.d, 32);          /* r < n < p */
    mv_fe_to_mont(&rf, &rf);
    mv_fe_mul(&t, &rf, &zz);
    if (mv_fe_equal(&t, &R.x)) return MV_VALID;

    c = 0;                          /* rn = r + n; try it when < p */
    for (i = 0; i < 4; i++) {
        c += (mv_u128)r.d[i] + MV_SC_N.d[i];
        rn[i] = (uint64_t)c;
        c >>= 64;
    }
    if (c == 0 && mv_u256_lt(rn, MV_FE_P.d)) {
        memcpy(rf.d, rn, 32);
        mv_fe_to_mont(&rf, &rf);
        mv_fe_mul(&t, &rf, &zz);
        if (mv_fe_equal(&t, &R.x)) return MV_VALID;
    }
    return MV_INVALID;
}

int mv_verify(const unsigned char *table, size_t table_len, const unsigned char *msg, size_t msg_len,
              const unsigned char *sig64, size_t sig_len) {
    int err = 0;
    const uint64_t *tq = mv_table_words(table, table_len, &err);
    if (tq == NULL) return err;
    if ((msg == NULL && msg_len != 0) || sig64 == NULL || sig_len != 64) return MV_ERR_ARG;
    mv_init();
    return mv_verify_core(tq + MV_HEADER_WORDS, msg, msg_len, sig64);
}

int mv_verify_batch(unsigned char *verdicts, size_t count, const unsigned char *const *tables,
                    size_t table_len, const unsigned char *msgs, size_t msgs_len, const size_t *offsets,
                    size_t offsets_len, const unsigned char *sigs, size_t sigs_len) {
    size_t i;
    int bad = 0;
    if (count == 0) return 0;
    if (verdicts == NULL) return MV_ERR_ARG;
    memset(verdicts, 0, count);
    if (tables == NULL || offsets == NULL || sigs == NULL || (msgs == NULL && msgs_len != 0))
        return MV_ERR_ARG;
    if (count > ((size_t)-1) / 64 || sigs_len != 64 * count || offsets_len != count + 1) return MV_ERR_ARG;
    if (offsets[count] > msgs_len) return MV_ERR_ARG;
    for (i = 0; i < count; i++) {
        if (offsets[i] > offsets[i + 1]) return MV_ERR_ARG;
    }
    mv_init();
    for (i = 0; i < count; i++) {
        int err = 0;
        const uint64_t *tq = mv_table_words(tables[i], table_len, &err);
        if (tq == NULL) {
            bad++;
            continue;
        }
        verdicts[i] = mv_verify_core(tq + MV_HEADER_WORDS, msgs == NULL ? NULL : msgs + offsets[i],
                                     offsets[i + 1] - offsets[i], sigs + 64 * i) == MV_VALID;
    }
    return bad;
}

/* ------------------------------------------------------------------------------ test hooks */

static int mv_point_out(unsigned char *out65, const mv_gej *r) {
    if (r->infinity) {
        memset(out65, 0, 65);
        return 0;
    }
    mv_gej_to_bytes(out65, r);
    return 1;
}

int mv_test_mul(unsigned char *out65, size_t out_len, const unsigned char *table, size_t table_len,
                const unsigned char *scalar32, size_t scalar_len) {
    int err = 0, d[MV_WINDOWS];
    uint64_t k[4];
    mv_gej r;
    const uint64_t *tq = mv_table_words(table, table_len, &err);
    if (tq == NULL) return err;
    if (out65 == NULL || out_len != 65 || scalar32 == NULL || scalar_len != 32) return MV_ERR_ARG;
    mv_u256_from_be(k, scalar32);
    mv_recode(d, k);
    mv_ecmult_tables(&r, tq + MV_HEADER_WORDS, d, NULL, NULL);
    return mv_point_out(out65, &r);
}

int mv_test_mul_gen(unsigned char *out65, size_t out_len, const unsigned char *scalar32, size_t scalar_len) {
    int d[MV_WINDOWS];
    uint64_t k[4];
    mv_gej r;
    if (out65 == NULL || out_len != 65 || scalar32 == NULL || scalar_len != 32) return MV_ERR_ARG;
    mv_init();
    mv_u256_from_be(k, scalar32);
    mv_recode(d, k);
    mv_ecmult_tables(&r, mv_gtable, d, NULL, NULL);
    return mv_point_out(out65, &r);
}

int mv_test_lincomb(unsigned char *out65, size_t out_len, const unsigned char *table, size_t table_len,
                    const unsigned char *u1_32, size_t u1_len, const unsigned char *u2_32, size_t u2_len) {
    int err = 0, d1[MV_WINDOWS], d2[MV_WINDOWS];
    uint64_t k1[4], k2[4];
    mv_gej r;
    const uint64_t *tq = mv_table_words(table, table_len, &err);
    if (tq == NULL) return err;
    if (out65 == NULL || out_len != 65 || u1_32 == NULL || u1_len != 32 || u2_32 == NULL || u2_len != 32)
        return MV_ERR_ARG;
    mv_init();
    mv_u256_from_be(k1, u1_32);
    mv_u256_from_be(k2, u2_32);
    mv_recode(d1, k1);
    mv_recode(d2, k2);
    mv_ecmult_tables(&r, mv_gtable, d1, tq + MV_HEADER_WORDS, d2);
    return mv_point_out(out65, &r);
}

int mv_test_table_entry(unsigned char *out65, size_t out_len, const unsigned char *table, size_t table_len,
                        size_t window, size_t multiple) {
    int err = 0;
    mv_ge p;
    const uint64_t *tq = mv_table_words(table, table_len, &err);
    if (tq == NULL) return err;
    if (out65 == NULL || out_len != 65 || window >= MV_WINDOWS || multiple < 1 || multiple > MV_TEETH)
        return MV_ERR_ARG;
    mv_table_get(&p, tq + MV_HEADER_WORDS, (int)window, (int)multiple);
    out65[0] = 4;
    mv_fe_get_be(out65 + 1, &p.x);
    mv_fe_get_be(out65 + 33, &p.y);
    return 1;
}

int mv_test_sha256(unsigned char *out32, size_t out_len, const unsigned char *msg, size_t msg_len, int impl) {
    if (out32 == NULL || out_len != 32 || (msg == NULL && msg_len != 0)) return MV_ERR_ARG;
    mv_init();
    if (impl == 0) {
        mv_sha256(out32, msg, msg_len, mv_sha256_blocks_portable);
        return 0;
    }
#if defined(MV_HAVE_SHANI_CODE)
    if (impl == 1 && (mv_feature_bits & MV_FEATURE_SHANI)) {
        mv_sha256(out32, msg, msg_len, mv_sha256_blocks_shani);
        return 0;
    }
#endif
    return impl == 1 ? MV_ERR_UNSUPPORTED : MV_ERR_ARG;
}

int mv_test_scalar_inverse(unsigned char *out32, size_t out_len, const unsigned char *s32, size_t s_len) {
    mv_sc s, w;
    static const mv_sc one = {{1, 0, 0, 0}};
    if (out32 == NULL || out_len != 32 || s32 == NULL || s_len != 32) return MV_ERR_ARG;
    if (!mv_sc_set_be_nonzero(&s, s32)) return MV_ERR_ARG;
    mv_sc_mul(&w, &s, &MV_SC_R2);
    mv_sc_inv_mont(&w, &w);
    mv_sc_mul(&w, &w, &one);
    mv_u256_to_be(out32, w.d);
    return 0;
}
