/* SPDX-License-Identifier: Apache-2.0
 *
 * manverify native ES256 engine: the only translation unit. It includes every *_impl.h so all
 * internals are static; the ABI is mv.h (plus, in test builds only, the hooks of mv_native.h).
 *
 * ECDSA verification (SEC 1 v2 §4.1.4) with raw r||s:
 *   reject unless 0 < r, s < n; e = SHA-256(msg) mod n; w = s^-1; u1 = e·w; u2 = r·w;
 *   R = u1·G + u2·Q (G and Q each from a precomputed table: additions only);
 *   accept iff R != infinity and x(R) mod n == r. Since x(R) = X/Z^2 < p < 2n, that is
 *   r·Z^2 == X or, when r + n < p, (r + n)·Z^2 == X: no inversion needed.
 *
 * All memory is the caller's (tables, scratch). The only static state is the CPU feature choice,
 * made once (pthread_once) and read-only afterwards.
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
#include "passport_impl.h"

/* Table layout (uint64_t words): a 64-byte header (magic, parameters), then MV_TABLE_LIMBS words
 * of affine points. */
#define MV_TABLE_MAGIC 0x7631543635325076ULL /* "vP256T1v" */
#define MV_HEADER_WORDS 8
#define MV_TABLE_BYTES ((MV_HEADER_WORDS + MV_TABLE_LIMBS) * sizeof(uint64_t))
#define MV_SCRATCH_BYTES (2 * MV_TABLE_POINTS * sizeof(mv_fe))
#define MV_PARAMS ((uint64_t)MV_W << 8 | (uint64_t)MV_WINDOWS)
#define MV_ABI_VERSION 1
#define MV_BATCH_CHUNK 64 /* signatures sharing one inversion */

/* Once-chosen, then read-only: the SHA-256 implementation and the field multiplication. */
static pthread_once_t mv_once = PTHREAD_ONCE_INIT;
static mv_sha256_blocks_fn mv_sha_blocks = mv_sha256_blocks_portable;
static int mv_feature_bits = 0;

#if defined(MV_HAVE_SHANI_CODE) || defined(MV_HAVE_ADX_CODE)
#include <cpuid.h>
#endif

#if defined(MV_HAVE_SHANI_CODE)
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
static int mv_cpu_has_adx(void) {
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return ((b >> 8) & 1) && ((b >> 19) & 1);            /* BMI2 (mulx), ADX (adcx/adox) */
}
#endif

static void mv_init_once(void) {
#if defined(MV_HAVE_ADX_CODE)
    if (mv_cpu_has_adx()) {
        mv_use_adx = 1;
        mv_feature_bits |= 2;
    }
#endif
#if defined(MV_HAVE_SHANI_CODE)
    if (mv_cpu_has_shani()) {
        mv_sha_blocks = mv_sha256_blocks_shani;
        mv_feature_bits |= 1;
    }
#endif
}

static inline void mv_init(void) { (void)pthread_once(&mv_once, mv_init_once); }

/* The points of a table filled by mv_key_load, or NULL. */
static const uint64_t *mv_table_points(const unsigned char *table) {
    const uint64_t *w;
    if (table == NULL || ((uintptr_t)table & 7) != 0) return NULL;
    w = (const uint64_t *)(const void *)table;
    if (w[0] != MV_TABLE_MAGIC || w[1] != MV_PARAMS) return NULL;
    return w + MV_HEADER_WORDS;
}

/* Parse and range-check an uncompressed point: MV_OK or MV_EPOINT. */
static int mv_point_parse(mv_ge *q, const unsigned char *point65, size_t point_len) {
    if (point65 == NULL || point_len != 65 || point65[0] != 0x04) return MV_EPOINT;
    if (!mv_fe_set_be(&q->x, point65 + 1) || !mv_fe_set_be(&q->y, point65 + 33)) return MV_EPOINT;
    /* On the curve with coordinates < p: finite and, n being prime with cofactor 1, of order n. */
    if (!mv_ge_on_curve(q)) return MV_EPOINT;
    return MV_OK;
}

/* A parsed signature: r and s in range, e = SHA-256(msg) mod n. */
typedef struct {
    mv_sc r, s, e;
} mv_sig;

static int mv_sig_parse(mv_sig *p, const unsigned char *msg, size_t msg_len, const unsigned char *sig64) {
    unsigned char h[32];
    if (!mv_sc_set_be_nonzero(&p->r, sig64) || !mv_sc_set_be_nonzero(&p->s, sig64 + 32)) return 0;
    mv_sha256_oneshot(h, msg, msg_len, mv_sha_blocks);
    mv_sc_set_be_reduce(&p->e, h);
    return 1;
}

/* The rest of the verification, given w = s^-1·2^256 mod n (Montgomery form). */
static int mv_sig_finish(const uint64_t *gt, const uint64_t *qt, const mv_sig *p, const mv_sc *w_mont) {
    mv_sc u1, u2;
    int d1[MV_WINDOWS], d2[MV_WINDOWS], i;
    mv_gej R;
    mv_fe zz, rf, t;
    uint64_t rn[4];
    mv_u128 c;

    mv_sc_mul(&u1, &p->e, w_mont); /* e·s^-1 */
    mv_sc_mul(&u2, &p->r, w_mont); /* r·s^-1 */
    mv_recode(d1, u1.d);
    mv_recode(d2, u2.d);
    mv_ecmult_tables(&R, gt, d1, qt, d2);
    if (R.infinity) return MV_INVALID;

    mv_fe_sqr(&zz, &R.z);
    memcpy(rf.d, p->r.d, 32);      /* r < n < p */
    mv_fe_to_mont(&rf, &rf);
    mv_fe_mul(&t, &rf, &zz);
    if (mv_fe_equal(&t, &R.x)) return MV_VALID;

    c = 0;                         /* rn = r + n, tried when < p */
    for (i = 0; i < 4; i++) {
        c += (mv_u128)p->r.d[i] + MV_SC_N.d[i];
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

/* ---------------------------------------------------------------------------------- the ABI */

int mv_version(void) { return MV_ABI_VERSION; }

int mv_features(void) {
    mv_init();
    return mv_feature_bits;
}

size_t mv_table_size(void) { return MV_TABLE_BYTES; }

size_t mv_scratch_size(void) { return MV_SCRATCH_BYTES; }

int mv_key_load(unsigned char *table, size_t table_len, unsigned char *scratch, size_t scratch_len,
                const unsigned char *point65, size_t point_len) {
    uint64_t *w;
    mv_fe *zs;
    mv_ge q;
    int rc;
    if (table == NULL || table_len != MV_TABLE_BYTES || ((uintptr_t)table & 7) != 0) return MV_EARG;
    if (scratch == NULL || scratch_len < MV_SCRATCH_BYTES || ((uintptr_t)scratch & 7) != 0) return MV_EARG;
    w = (uint64_t *)(void *)table;
    w[0] = 0; /* unusable until complete */
    rc = mv_point_parse(&q, point65, point_len);
    if (rc != MV_OK) return rc;
    mv_init();
    memset(w, 0, MV_HEADER_WORDS * sizeof(uint64_t));
    zs = (mv_fe *)(void *)scratch;
    mv_table_build(w + MV_HEADER_WORDS, &q, zs, zs + MV_TABLE_POINTS);
    w[1] = MV_PARAMS;
    w[0] = MV_TABLE_MAGIC;
    return MV_OK;
}

int mv_verify(const unsigned char *gtable, const unsigned char *qtable, const unsigned char *msg,
              size_t msg_len, const unsigned char *sig64, size_t sig_len) {
    const uint64_t *gt = mv_table_points(gtable), *qt = mv_table_points(qtable);
    mv_sig p;
    mv_sc w;
    if (gt == NULL || qt == NULL) return MV_ETABLE;
    if ((msg == NULL && msg_len != 0) || sig64 == NULL) return MV_EARG;
    if (sig_len != 64) return MV_INVALID;
    mv_init();
    if (!mv_sig_parse(&p, msg, msg_len, sig64)) return MV_INVALID;
    mv_sc_inv_mont_var(&w, &p.s);   /* s^-1·R */
    return mv_sig_finish(gt, qt, &p, &w);
}

/* The batch loop: message k is blob[offsets[k] .. offsets[k + 1]), its signature sig_blob[64 k ..]. */
static void mv_batch_run(const uint64_t *gt, const unsigned char *const *qtables, const unsigned char *blob,
                         const size_t *offsets, const unsigned char *sig_blob, int *out, size_t n) {
    static const mv_sc one = {{1, 0, 0, 0}};
    size_t base, i;
    for (base = 0; base < n; base += MV_BATCH_CHUNK) {
        size_t m = n - base < MV_BATCH_CHUNK ? n - base : MV_BATCH_CHUNK;
        mv_sig p[MV_BATCH_CHUNK];
        mv_sc s_mont[MV_BATCH_CHUNK], prefix[MV_BATCH_CHUNK], acc, inv;
        int live[MV_BATCH_CHUNK], any = 0;
        /* Montgomery's trick: one inversion for the chunk's s values. */
        acc = MV_SC_ONE_MONT;
        for (i = 0; i < m; i++) {
            size_t k = base + i;
            live[i] = 0;
            if (mv_table_points(qtables[k]) == NULL) {
                out[k] = MV_ETABLE;
                continue;
            }
            if (!mv_sig_parse(&p[i], blob == NULL ? NULL : blob + offsets[k], offsets[k + 1] - offsets[k],
                              sig_blob + 64 * k)) {
                out[k] = MV_INVALID;
                continue;
            }
            live[i] = 1;
            any = 1;
            mv_sc_mul(&s_mont[i], &p[i].s, &MV_SC_R2);
            prefix[i] = acc;
            mv_sc_mul(&acc, &acc, &s_mont[i]);
        }
        if (!any) continue;
        mv_sc_mul(&acc, &acc, &one);      /* the plain product (non-zero: n is prime) */
        mv_sc_inv_mont_var(&inv, &acc);   /* (prod s)^-1·R */
        for (i = m; i-- > 0;) {
            mv_sc w;
            if (!live[i]) continue;
            mv_sc_mul(&w, &inv, &prefix[i]);     /* s_i^-1·R        */
            mv_sc_mul(&inv, &inv, &s_mont[i]);   /* drop s_i        */
            out[base + i] = mv_sig_finish(gt, mv_table_points(qtables[base + i]), &p[i], &w);
        }
    }
}

int mv_verify_batch_packed(const unsigned char *gtable, const unsigned char *const *qtables,
                           const unsigned char *msgs, size_t msgs_len, const size_t *offsets,
                           const unsigned char *sigs, size_t sigs_len, int *out, size_t n) {
    const uint64_t *gt = mv_table_points(gtable);
    size_t i;
    if (gt == NULL) return MV_ETABLE;
    if (n == 0) return MV_OK;
    if (qtables == NULL || offsets == NULL || sigs == NULL || out == NULL || (msgs == NULL && msgs_len != 0))
        return MV_EARG;
    if (n > ((size_t)-1) / 64 || sigs_len != 64 * n || offsets[n] > msgs_len) return MV_EARG;
    for (i = 0; i < n; i++) {
        if (offsets[i] > offsets[i + 1]) return MV_EARG;
    }
    mv_init();
    mv_batch_run(gt, qtables, msgs, offsets, sigs, out, n);
    return MV_OK;
}

static void mv_put_le64(unsigned char *p, uint64_t v) {
    int k;
    for (k = 0; k < 8; k++) p[k] = (unsigned char)(v >> (8 * k));
}

int mv_shaken_scan(const unsigned char *toks, size_t toks_len, const size_t *offsets, size_t n,
                   unsigned char *out, size_t out_len, size_t *out_used) {
    size_t i, pos;
    if (out_used == NULL) return MV_EARG;
    *out_used = 0;
    if (n == 0) return MV_OK;
    if (offsets == NULL || out == NULL || (toks == NULL && toks_len != 0)) return MV_EARG;
    /* both terms at most SIZE_MAX / 2, so the size below cannot wrap */
    if (toks_len > ((size_t)-1) / 2 || n > ((size_t)-1) / 2 / (MV_SCAN_RECORD + 1)) return MV_EARG;
    if (out_len < (MV_SCAN_RECORD + 1) * n + toks_len || offsets[n] > toks_len) return MV_EARG;
    for (i = 0; i < n; i++) {
        if (offsets[i] > offsets[i + 1]) return MV_EARG;
    }
    pos = MV_SCAN_RECORD * n;
    for (i = 0; i < n; i++) {
        unsigned char *rec = out + MV_SCAN_RECORD * i;
        size_t len = offsets[i + 1] - offsets[i], end = 0, line_n = 0;
        long long iat = 0;
        /* The line fits: it is shorter than its token (see mv_scan_one), plus its newline. */
        if (len > 0 && mv_scan_one(toks + offsets[i], len, &end, rec, &iat, out + pos, &line_n)) {
            mv_put_le64(rec + 64, (uint64_t)iat);
            mv_put_le64(rec + 72, (uint64_t)end);
            pos += line_n;
        } else {
            memset(rec, 0, MV_SCAN_RECORD);
        }
        out[pos++] = '\n';
    }
    *out_used = pos;
    return MV_OK;
}

/* ------------------------------------------------------------------------------ test hooks */
#ifdef MV_TEST_HOOKS

/* 65-byte uncompressed point, or zeros and 1 for infinity; 0 for a finite point. */
static int mv_point_out(unsigned char *out65, const mv_gej *a) {
    mv_fe zi, zi2, x, y;
    if (a->infinity) {
        memset(out65, 0, 65);
        return 1;
    }
    mv_fe_inv(&zi, &a->z);
    mv_fe_sqr(&zi2, &zi);
    mv_fe_mul(&x, &a->x, &zi2);
    mv_fe_mul(&zi2, &zi2, &zi);
    mv_fe_mul(&y, &a->y, &zi2);
    out65[0] = 4;
    mv_fe_get_be(out65 + 1, &x);
    mv_fe_get_be(out65 + 33, &y);
    return 0;
}

int mv_test_table_mul(unsigned char *out65, const unsigned char *table, const unsigned char *k32) {
    const uint64_t *t;
    int d[MV_WINDOWS];
    uint64_t k[4];
    mv_gej r;
    if (out65 == NULL || k32 == NULL) return MV_EARG;
    t = mv_table_points(table);
    if (t == NULL) return MV_ETABLE;
    mv_init();
    mv_u256_from_be(k, k32);
    mv_recode(d, k);
    mv_ecmult_tables(&r, t, d, NULL, NULL);
    return mv_point_out(out65, &r);
}

int mv_test_naive_mul(unsigned char *out65, const unsigned char *point65, const unsigned char *k32) {
    mv_ge q;
    mv_gej r;
    uint64_t k[4];
    int i, rc;
    if (out65 == NULL || k32 == NULL) return MV_EARG;
    rc = mv_point_parse(&q, point65, 65);
    if (rc != MV_OK) return rc;
    mv_init();
    mv_u256_from_be(k, k32);
    mv_gej_set_infinity(&r);
    for (i = 255; i >= 0; i--) {
        mv_gej_double(&r, &r);
        if ((k[i / 64] >> (i % 64)) & 1) mv_gej_add_ge(&r, &r, &q);
    }
    return mv_point_out(out65, &r);
}

int mv_test_sha256_impl(unsigned char *out32, const unsigned char *msg, size_t msg_len, int impl) {
    if (out32 == NULL || (msg == NULL && msg_len != 0)) return MV_EARG;
    mv_init();
    if (impl == 0) {
        mv_sha256_oneshot(out32, msg, msg_len, mv_sha256_blocks_portable);
        return MV_OK;
    }
#if defined(MV_HAVE_SHANI_CODE)
    if (impl == 1 && (mv_feature_bits & 1)) {
        mv_sha256_oneshot(out32, msg, msg_len, mv_sha256_blocks_shani);
        return MV_OK;
    }
#endif
    return impl == 1 ? MV_EUNSUPPORTED : MV_EARG;
}

int mv_test_fe_mul(unsigned char *out32, const unsigned char *a32, const unsigned char *b32, int impl) {
    static const mv_fe one = {{1, 0, 0, 0}};
    mv_fe a, b, c;
    void (*mul)(mv_fe *, const mv_fe *, const mv_fe *) = mv_fe_mul_port;
    if (out32 == NULL || a32 == NULL || b32 == NULL) return MV_EARG;
    mv_u256_from_be(a.d, a32);
    mv_u256_from_be(b.d, b32);
    if (!mv_u256_lt(a.d, MV_FE_P.d) || !mv_u256_lt(b.d, MV_FE_P.d)) return MV_EARG;
    mv_init();
    if (impl == 1 || impl == 3) {
#if defined(MV_HAVE_ADX_CODE)
        if (!mv_use_adx) return MV_EUNSUPPORTED;
        mul = mv_fe_mul_adx;
#else
        return MV_EUNSUPPORTED;
#endif
    } else if (impl != 0 && impl != 2) {
        return MV_EARG;
    }
    mul(&a, &a, &MV_FE_R2);
    mul(&b, &b, &MV_FE_R2);
    if (impl == 2) {
        mv_fe_sqr_port(&c, &a);
#if defined(MV_HAVE_ADX_CODE)
    } else if (impl == 3) {
        mv_fe_sqr_adx(&c, &a);
#endif
    } else {
        mul(&c, &a, &b);
    }
    mul(&c, &c, &one);
    mv_u256_to_be(out32, c.d);
    return MV_OK;
}

int mv_test_scalar_inverse(unsigned char *out32, const unsigned char *s32) {
    static const mv_sc one = {{1, 0, 0, 0}};
    mv_sc s, w;
    if (out32 == NULL || s32 == NULL) return MV_EARG;
    if (!mv_sc_set_be_nonzero(&s, s32)) return MV_EARG;
    mv_sc_inv_mont_var(&w, &s);
    mv_sc_mul(&w, &w, &one);
    mv_u256_to_be(out32, w.d);
    return MV_OK;
}

int mv_test_lincomb(unsigned char *out65, const unsigned char *gtable, const unsigned char *qtable,
                    const unsigned char *u1_32, const unsigned char *u2_32) {
    const uint64_t *gt = mv_table_points(gtable), *qt = mv_table_points(qtable);
    int d1[MV_WINDOWS], d2[MV_WINDOWS];
    uint64_t k1[4], k2[4];
    mv_gej r;
    if (gt == NULL || qt == NULL) return MV_ETABLE;
    if (out65 == NULL || u1_32 == NULL || u2_32 == NULL) return MV_EARG;
    mv_init();
    mv_u256_from_be(k1, u1_32);
    mv_u256_from_be(k2, u2_32);
    mv_recode(d1, k1);
    mv_recode(d2, k2);
    mv_ecmult_tables(&r, gt, d1, qt, d2);
    return mv_point_out(out65, &r);
}

int mv_test_table_entry(unsigned char *out65, const unsigned char *table, size_t window, size_t multiple) {
    const uint64_t *t = mv_table_points(table);
    mv_ge p;
    if (t == NULL) return MV_ETABLE;
    if (out65 == NULL || window >= MV_WINDOWS || multiple < 1 || multiple > MV_TEETH) return MV_EARG;
    mv_init();
    mv_table_get(&p, t, (int)window, (int)multiple);
    out65[0] = 4;
    mv_fe_get_be(out65 + 1, &p.x);
    mv_fe_get_be(out65 + 33, &p.y);
    return MV_OK;
}

#endif /* MV_TEST_HOOKS */
