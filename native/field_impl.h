/* SPDX-License-Identifier: Apache-2.0
 *
 * Arithmetic modulo p = 2^256 - 2^224 + 2^192 + 2^96 - 1 (the P-256 field).
 *
 * Elements are four 64-bit little-endian limbs in Montgomery form (a·2^256 mod p), always fully
 * reduced (< p), so equality and zero tests are limb comparisons. Since p ≡ -1 (mod 2^64), the
 * Montgomery constant -p^-1 mod 2^64 is 1 and each reduction step's multiple of p is assembled
 * from shifts plus one 64x64 product (p's limbs are 2^64-1, 2^32-1, 0, 2^64-2^32+1).
 */
#ifndef MV_FIELD_IMPL_H
#define MV_FIELD_IMPL_H

#include <stdint.h>
#include <string.h>

__extension__ typedef unsigned __int128 mv_u128;

typedef struct {
    uint64_t d[4];
} mv_fe;

/* Add/subtract with carry. On x86-64 the intrinsics become one adc/sbb each; compilers turn the
 * __int128 form into setc/movzx sequences that made additions cost half a multiplication. */
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && !defined(MV_NO_ASM)
#include <x86intrin.h>
static inline unsigned char mv_addc(unsigned char c, uint64_t a, uint64_t b, uint64_t *out) {
    unsigned long long o;
    c = _addcarry_u64(c, a, b, &o);
    *out = o;
    return c;
}
static inline unsigned char mv_subb(unsigned char c, uint64_t a, uint64_t b, uint64_t *out) {
    unsigned long long o;
    c = _subborrow_u64(c, a, b, &o);
    *out = o;
    return c;
}
#else
static inline unsigned char mv_addc(unsigned char c, uint64_t a, uint64_t b, uint64_t *out) {
    mv_u128 t = (mv_u128)a + b + c;
    *out = (uint64_t)t;
    return (unsigned char)(t >> 64);
}
static inline unsigned char mv_subb(unsigned char c, uint64_t a, uint64_t b, uint64_t *out) {
    mv_u128 t = (mv_u128)a - b - c;
    *out = (uint64_t)t;
    return (unsigned char)((t >> 64) & 1);
}
#endif

static const mv_fe MV_FE_P = {{0xffffffffffffffffULL, 0x00000000ffffffffULL, 0x0000000000000000ULL,
                               0xffffffff00000001ULL}};
/* 1 in Montgomery form: 2^256 mod p. */
static const mv_fe MV_FE_ONE = {{0x0000000000000001ULL, 0xffffffff00000000ULL, 0xffffffffffffffffULL,
                                 0x00000000fffffffeULL}};
/* 2^512 mod p: multiplying by it converts into Montgomery form. */
static const mv_fe MV_FE_R2 = {{0x0000000000000003ULL, 0xfffffffbffffffffULL, 0xfffffffffffffffeULL,
                                0x00000004fffffffdULL}};
/* The curve coefficient b, in Montgomery form. */
static const mv_fe MV_FE_B = {{0xd89cdf6229c4bddfULL, 0xacf005cd78843090ULL, 0xe5a220abf7212ed6ULL,
                               0xdc30061d04874834ULL}};

/* r = t - p when t (5 limbs, t4 <= 1) is >= p, else t. Branch-free: the outcome is
 * data-dependent and a mispredicted branch costs more than the selection. */
static inline void mv_fe_reduce_once(mv_fe *r, uint64_t t0, uint64_t t1, uint64_t t2, uint64_t t3,
                                     uint64_t t4) {
    uint64_t s0, s1, s2, s3, s4, mask;
    unsigned char b;
    b = mv_subb(0, t0, MV_FE_P.d[0], &s0);
    b = mv_subb(b, t1, MV_FE_P.d[1], &s1);
    b = mv_subb(b, t2, MV_FE_P.d[2], &s2);
    b = mv_subb(b, t3, MV_FE_P.d[3], &s3);
    b = mv_subb(b, t4, 0, &s4);
    mask = (uint64_t)0 - (uint64_t)b; /* all ones when t < p: keep t */
    r->d[0] = (t0 & mask) | (s0 & ~mask);
    r->d[1] = (t1 & mask) | (s1 & ~mask);
    r->d[2] = (t2 & mask) | (s2 & ~mask);
    r->d[3] = (t3 & mask) | (s3 & ~mask);
}

/* One Montgomery step: (t + m·p) / 2^64 with m = t0, t = t0..t4 (t5 folded in by the caller). */
#define MV_FE_REDC_STEP(t0, t1, t2, t3, t4, t5)                                                     \
    do {                                                                                           \
        uint64_t m_ = (t0);                                                                        \
        mv_u128 c_ = (mv_u128)(t1) + ((mv_u128)m_ << 32);                                          \
        (t0) = (uint64_t)c_; c_ >>= 64;                                                            \
        c_ += (t2);                                                                                \
        (t1) = (uint64_t)c_; c_ >>= 64;                                                            \
        c_ += (mv_u128)m_ * 0xffffffff00000001ULL + (t3);                                          \
        (t2) = (uint64_t)c_; c_ >>= 64;                                                            \
        c_ += (t4);                                                                                \
        (t3) = (uint64_t)c_; c_ >>= 64;                                                            \
        (t4) = (t5) + (uint64_t)c_;                                                                \
    } while (0)

/* r = a·b·2^-256 mod p. Operand-scanning Montgomery multiplication (CIOS). r may alias a or b. */
static inline void mv_fe_mul_port(mv_fe *r, const mv_fe *a, const mv_fe *b) {
    const uint64_t a0 = a->d[0], a1 = a->d[1], a2 = a->d[2], a3 = a->d[3];
    uint64_t t0, t1, t2, t3, t4, t5, bi;
    mv_u128 c;

    bi = b->d[0];
    c = (mv_u128)a0 * bi; t0 = (uint64_t)c; c >>= 64;
    c += (mv_u128)a1 * bi; t1 = (uint64_t)c; c >>= 64;
    c += (mv_u128)a2 * bi; t2 = (uint64_t)c; c >>= 64;
    c += (mv_u128)a3 * bi; t3 = (uint64_t)c; t4 = (uint64_t)(c >> 64);
    t5 = 0;
    MV_FE_REDC_STEP(t0, t1, t2, t3, t4, t5);

#define MV_FE_MUL_ROUND(i)                                                                         \
    bi = b->d[i];                                                                                  \
    c = (mv_u128)a0 * bi + t0; t0 = (uint64_t)c; c >>= 64;                                         \
    c += (mv_u128)a1 * bi + t1; t1 = (uint64_t)c; c >>= 64;                                        \
    c += (mv_u128)a2 * bi + t2; t2 = (uint64_t)c; c >>= 64;                                        \
    c += (mv_u128)a3 * bi + t3; t3 = (uint64_t)c; c >>= 64;                                        \
    c += t4; t4 = (uint64_t)c; t5 = (uint64_t)(c >> 64);                                           \
    MV_FE_REDC_STEP(t0, t1, t2, t3, t4, t5);

    MV_FE_MUL_ROUND(1)
    MV_FE_MUL_ROUND(2)
    MV_FE_MUL_ROUND(3)
#undef MV_FE_MUL_ROUND
    mv_fe_reduce_once(r, t0, t1, t2, t3, t4);
}

/* r = a^2·2^-256 mod p: the 512-bit square (6 cross products doubled + 4 squares), then four
 * Montgomery steps. */
static inline void mv_fe_sqr_port(mv_fe *r, const mv_fe *a) {
    const uint64_t a0 = a->d[0], a1 = a->d[1], a2 = a->d[2], a3 = a->d[3];
    uint64_t w1, w2, w3, w4, w5, w6, w7, hi;
    uint64_t t0, t1, t2, t3, t4, t5;
    mv_u128 c;

    /* cross products a_i·a_j, i < j, into w1..w6 */
    c = (mv_u128)a0 * a1; w1 = (uint64_t)c; c >>= 64;
    c += (mv_u128)a0 * a2; w2 = (uint64_t)c; c >>= 64;
    c += (mv_u128)a0 * a3; w3 = (uint64_t)c; w4 = (uint64_t)(c >> 64);
    c = (mv_u128)a1 * a2 + w3; w3 = (uint64_t)c; c >>= 64;
    c += (mv_u128)a1 * a3 + w4; w4 = (uint64_t)c; w5 = (uint64_t)(c >> 64);
    c = (mv_u128)a2 * a3 + w5; w5 = (uint64_t)c; w6 = (uint64_t)(c >> 64);
    /* double them */
    w7 = w6 >> 63;
    w6 = (w6 << 1) | (w5 >> 63);
    w5 = (w5 << 1) | (w4 >> 63);
    w4 = (w4 << 1) | (w3 >> 63);
    w3 = (w3 << 1) | (w2 >> 63);
    w2 = (w2 << 1) | (w1 >> 63);
    w1 = w1 << 1;
    /* add the squares */
    c = (mv_u128)a0 * a0; t0 = (uint64_t)c; hi = (uint64_t)(c >> 64);
    c = (mv_u128)w1 + hi; w1 = (uint64_t)c; c >>= 64;
    {
        mv_u128 s = (mv_u128)a1 * a1;
        c += (mv_u128)w2 + (uint64_t)s; w2 = (uint64_t)c; c >>= 64;
        c += (mv_u128)w3 + (uint64_t)(s >> 64); w3 = (uint64_t)c; c >>= 64;
        s = (mv_u128)a2 * a2;
        c += (mv_u128)w4 + (uint64_t)s; w4 = (uint64_t)c; c >>= 64;
        c += (mv_u128)w5 + (uint64_t)(s >> 64); w5 = (uint64_t)c; c >>= 64;
        s = (mv_u128)a3 * a3;
        c += (mv_u128)w6 + (uint64_t)s; w6 = (uint64_t)c; c >>= 64;
        c += (mv_u128)w7 + (uint64_t)(s >> 64); w7 = (uint64_t)c;
    }
    /* Montgomery-reduce the low half, then add the high half */
    t1 = w1; t2 = w2; t3 = w3; t4 = 0; t5 = 0;
    MV_FE_REDC_STEP(t0, t1, t2, t3, t4, t5);
    MV_FE_REDC_STEP(t0, t1, t2, t3, t4, t5);
    MV_FE_REDC_STEP(t0, t1, t2, t3, t4, t5);
    MV_FE_REDC_STEP(t0, t1, t2, t3, t4, t5);
    /* now t0..t3 (+t4) < 2^256 + p-ish; add w4..w7 */
    c = (mv_u128)t0 + w4; t0 = (uint64_t)c; c >>= 64;
    c += (mv_u128)t1 + w5; t1 = (uint64_t)c; c >>= 64;
    c += (mv_u128)t2 + w6; t2 = (uint64_t)c; c >>= 64;
    c += (mv_u128)t3 + w7; t3 = (uint64_t)c; c >>= 64;
    t4 = t4 + (uint64_t)c;
    mv_fe_reduce_once(r, t0, t1, t2, t3, t4);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(MV_NO_ASM)
#define MV_HAVE_ADX_CODE 1
/* The same Montgomery multiplication with mulx (flag-free products) and two independent carry
 * chains, adcx (CF) and adox (OF): about twice as fast as what compilers make of the __int128
 * code. Only called when cpuid reports BMI2 and ADX (see mv_use_adx). The six accumulator
 * registers rotate by one each round instead of moving limbs, so after round 3 the result sits in
 * (r4, r5, r0, r1) with its top bit in r2. */
#define MV_ADX_ROUND(i, T0, T1, T2, T3, T4, T5)                                                    \
    "movq " #i "*8(%[b]), %%rdx\n\t"                                                              \
    "xorl %k[z], %k[z]\n\t"  /* z = 0, CF = OF = 0 */                                             \
    "movq %[z], %[" #T5 "]\n\t"                                                                   \
    "mulxq 0(%[a]), %[lo], %[hi]\n\t"                                                             \
    "adcxq %[lo], %[" #T0 "]\n\t"                                                                 \
    "adoxq %[hi], %[" #T1 "]\n\t"                                                                 \
    "mulxq 8(%[a]), %[lo], %[hi]\n\t"                                                             \
    "adcxq %[lo], %[" #T1 "]\n\t"                                                                 \
    "adoxq %[hi], %[" #T2 "]\n\t"                                                                 \
    "mulxq 16(%[a]), %[lo], %[hi]\n\t"                                                            \
    "adcxq %[lo], %[" #T2 "]\n\t"                                                                 \
    "adoxq %[hi], %[" #T3 "]\n\t"                                                                 \
    "mulxq 24(%[a]), %[lo], %[hi]\n\t"                                                            \
    "adcxq %[lo], %[" #T3 "]\n\t"                                                                 \
    "adoxq %[hi], %[" #T4 "]\n\t"                                                                 \
    "adcxq %[z], %[" #T4 "]\n\t"                                                                  \
    "adoxq %[z], %[" #T5 "]\n\t"                                                                  \
    "adcxq %[z], %[" #T5 "]\n\t"                                                                  \
    /* reduction: m = T0; t + m·p = t + (m << 96...) assembled as in MV_FE_REDC_STEP */            \
    "movq %[" #T0 "], %%rdx\n\t"                                                                  \
    "movq %[" #T0 "], %[lo]\n\t"                                                                  \
    "shlq $32, %[lo]\n\t"                                                                         \
    "shrq $32, %[" #T0 "]\n\t"                                                                    \
    "movabsq $0xffffffff00000001, %[z]\n\t"                                                       \
    "mulxq %[z], %[hi], %%rdx\n\t"                                                                \
    "addq %[lo], %[" #T1 "]\n\t"                                                                  \
    "adcq %[" #T0 "], %[" #T2 "]\n\t"                                                             \
    "adcq %[hi], %[" #T3 "]\n\t"                                                                  \
    "adcq %%rdx, %[" #T4 "]\n\t"                                                                  \
    "adcq $0, %[" #T5 "]\n\t"

static inline void mv_fe_mul_adx(mv_fe *r, const mv_fe *a, const mv_fe *b) {
    uint64_t r0 = 0, r1 = 0, r2 = 0, r3 = 0, r4 = 0, r5, lo, hi, z;
    __asm__("" MV_ADX_ROUND(0, r0, r1, r2, r3, r4, r5)
               MV_ADX_ROUND(1, r1, r2, r3, r4, r5, r0)
               MV_ADX_ROUND(2, r2, r3, r4, r5, r0, r1)
               MV_ADX_ROUND(3, r3, r4, r5, r0, r1, r2)
            : [r0] "+&r"(r0), [r1] "+&r"(r1), [r2] "+&r"(r2), [r3] "+&r"(r3), [r4] "+&r"(r4),
              [r5] "=&r"(r5), [lo] "=&r"(lo), [hi] "=&r"(hi), [z] "=&r"(z)
            : [a] "r"(a->d), [b] "r"(b->d), "m"(*(const uint64_t(*)[4])a->d),
              "m"(*(const uint64_t(*)[4])b->d)
            : "rdx", "cc");
    mv_fe_reduce_once(r, r4, r5, r0, r1, r2);
}
#undef MV_ADX_ROUND

/* One Montgomery step on the 4-limb window (T0..T3) of a value < 2^256 (the low half of a
 * square): (T + m·p) / 2^64 with m = T0, which again fits in 4 limbs; they end in T1, T2, T3, T0. */
#define MV_ADX_REDC(T0, T1, T2, T3)                                                                \
    "movq %[" #T0 "], %%rdx\n\t"                                                                  \
    "movq %[" #T0 "], %[lo]\n\t"                                                                  \
    "shlq $32, %[lo]\n\t"                                                                         \
    "shrq $32, %[" #T0 "]\n\t"                                                                    \
    "movabsq $0xffffffff00000001, %[z]\n\t"                                                       \
    "mulxq %[z], %[hi], %%rdx\n\t"                                                                \
    "addq %[lo], %[" #T1 "]\n\t"                                                                  \
    "adcq %[" #T0 "], %[" #T2 "]\n\t"                                                             \
    "adcq %[hi], %[" #T3 "]\n\t"                                                                  \
    "adcq $0, %%rdx\n\t"                                                                          \
    "movq %%rdx, %[" #T0 "]\n\t"

/* r = a^2·2^-256 mod p: the six cross products once, doubled, plus the four squares (10 mulx
 * instead of 16), then four reduction steps on the low half and the high half added. */
static inline void mv_fe_sqr_adx(mv_fe *r, const mv_fe *a) {
    uint64_t t0, t1, t2, t3, t4, t5, t6, t7, lo, hi, z;
    __asm__(/* cross products a0·(a1, a2, a3) */
            "movq 0(%[a]), %%rdx\n\t"
            "mulxq 8(%[a]), %[t1], %[t2]\n\t"
            "mulxq 16(%[a]), %[lo], %[t3]\n\t"
            "addq %[lo], %[t2]\n\t"
            "mulxq 24(%[a]), %[lo], %[t4]\n\t"
            "adcq %[lo], %[t3]\n\t"
            "adcq $0, %[t4]\n\t"
            /* a1·(a2, a3) */
            "movq 8(%[a]), %%rdx\n\t"
            "mulxq 16(%[a]), %[lo], %[hi]\n\t"
            "mulxq 24(%[a]), %[t0], %[t5]\n\t"
            "addq %[lo], %[t3]\n\t"
            "adcq %[hi], %[t4]\n\t"
            "adcq $0, %[t5]\n\t"
            "addq %[t0], %[t4]\n\t"
            "adcq $0, %[t5]\n\t"
            /* a2·a3 */
            "movq 16(%[a]), %%rdx\n\t"
            "mulxq 24(%[a]), %[lo], %[t6]\n\t"
            "addq %[lo], %[t5]\n\t"
            "adcq $0, %[t6]\n\t"
            /* double */
            "xorl %k[t7], %k[t7]\n\t"
            "addq %[t1], %[t1]\n\t"
            "adcq %[t2], %[t2]\n\t"
            "adcq %[t3], %[t3]\n\t"
            "adcq %[t4], %[t4]\n\t"
            "adcq %[t5], %[t5]\n\t"
            "adcq %[t6], %[t6]\n\t"
            "adcq $0, %[t7]\n\t"
            /* plus the squares */
            "movq 0(%[a]), %%rdx\n\t"
            "mulxq %%rdx, %[t0], %[hi]\n\t"
            "addq %[hi], %[t1]\n\t"
            "movq 8(%[a]), %%rdx\n\t"
            "mulxq %%rdx, %[lo], %[hi]\n\t"
            "adcq %[lo], %[t2]\n\t"
            "adcq %[hi], %[t3]\n\t"
            "movq 16(%[a]), %%rdx\n\t"
            "mulxq %%rdx, %[lo], %[hi]\n\t"
            "adcq %[lo], %[t4]\n\t"
            "adcq %[hi], %[t5]\n\t"
            "movq 24(%[a]), %%rdx\n\t"
            "mulxq %%rdx, %[lo], %[hi]\n\t"
            "adcq %[lo], %[t6]\n\t"
            "adcq %[hi], %[t7]\n\t"
            /* reduce the low half: limbs rotate t0..t3 -> t1,t2,t3,t0 -> ... -> t0..t3 */
            MV_ADX_REDC(t0, t1, t2, t3)
            MV_ADX_REDC(t1, t2, t3, t0)
            MV_ADX_REDC(t2, t3, t0, t1)
            MV_ADX_REDC(t3, t0, t1, t2)
            /* plus the high half */
            "addq %[t4], %[t0]\n\t"
            "adcq %[t5], %[t1]\n\t"
            "adcq %[t6], %[t2]\n\t"
            "adcq %[t7], %[t3]\n\t"
            "movl $0, %k[lo]\n\t"
            "adcq $0, %[lo]\n\t"
            : [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [t4] "=&r"(t4),
              [t5] "=&r"(t5), [t6] "=&r"(t6), [t7] "=&r"(t7), [lo] "=&r"(lo), [hi] "=&r"(hi),
              [z] "=&r"(z)
            : [a] "r"(a->d), "m"(*(const uint64_t(*)[4])a->d)
            : "rdx", "cc");
    mv_fe_reduce_once(r, t0, t1, t2, t3, lo);
}
#undef MV_ADX_REDC
#endif

#if defined(MV_HAVE_ADX_CODE)
/* Set once (mv_init) when the CPU has BMI2 and ADX; read-only afterwards. */
static int mv_use_adx = 0;
#endif

static inline void mv_fe_mul(mv_fe *r, const mv_fe *a, const mv_fe *b) {
#if defined(MV_HAVE_ADX_CODE)
    if (mv_use_adx) {
        mv_fe_mul_adx(r, a, b);
        return;
    }
#endif
    mv_fe_mul_port(r, a, b);
}

static inline void mv_fe_sqr(mv_fe *r, const mv_fe *a) {
#if defined(MV_HAVE_ADX_CODE)
    if (mv_use_adx) {
        mv_fe_sqr_adx(r, a);
        return;
    }
#endif
    mv_fe_sqr_port(r, a);
}

static inline void mv_fe_add(mv_fe *r, const mv_fe *a, const mv_fe *b) {
    uint64_t t0, t1, t2, t3;
    unsigned char c;
    c = mv_addc(0, a->d[0], b->d[0], &t0);
    c = mv_addc(c, a->d[1], b->d[1], &t1);
    c = mv_addc(c, a->d[2], b->d[2], &t2);
    c = mv_addc(c, a->d[3], b->d[3], &t3);
    mv_fe_reduce_once(r, t0, t1, t2, t3, c);
}

static inline void mv_fe_sub(mv_fe *r, const mv_fe *a, const mv_fe *b) {
    uint64_t t0, t1, t2, t3, mask;
    unsigned char c;
    c = mv_subb(0, a->d[0], b->d[0], &t0);
    c = mv_subb(c, a->d[1], b->d[1], &t1);
    c = mv_subb(c, a->d[2], b->d[2], &t2);
    c = mv_subb(c, a->d[3], b->d[3], &t3);
    mask = (uint64_t)0 - (uint64_t)c; /* all ones when a < b: add p back */
    c = mv_addc(0, t0, MV_FE_P.d[0] & mask, &r->d[0]);
    c = mv_addc(c, t1, MV_FE_P.d[1] & mask, &r->d[1]);
    c = mv_addc(c, t2, 0, &r->d[2]);                 /* p's limb 2 is 0 */
    (void)mv_addc(c, t3, MV_FE_P.d[3] & mask, &r->d[3]);
}

static inline int mv_fe_is_zero(const mv_fe *a) {
    return (a->d[0] | a->d[1] | a->d[2] | a->d[3]) == 0;
}

static inline int mv_fe_equal(const mv_fe *a, const mv_fe *b) {
    return ((a->d[0] ^ b->d[0]) | (a->d[1] ^ b->d[1]) | (a->d[2] ^ b->d[2]) | (a->d[3] ^ b->d[3])) == 0;
}

static inline void mv_fe_neg(mv_fe *r, const mv_fe *a) {
    static const mv_fe zero = {{0, 0, 0, 0}};
    mv_fe_sub(r, &zero, a);
}

/* Big-endian 32 bytes -> limbs (no reduction). */
static inline void mv_u256_from_be(uint64_t d[4], const unsigned char *in32) {
    int i, j;
    for (i = 0; i < 4; i++) {
        uint64_t v = 0;
        for (j = 0; j < 8; j++) v = (v << 8) | in32[(3 - i) * 8 + j];
        d[i] = v;
    }
}

static inline void mv_u256_to_be(unsigned char *out32, const uint64_t d[4]) {
    int i, j;
    for (i = 0; i < 4; i++) {
        for (j = 0; j < 8; j++) out32[(3 - i) * 8 + j] = (unsigned char)(d[i] >> (56 - 8 * j));
    }
}

/* a < b for 256-bit limb vectors. */
static inline int mv_u256_lt(const uint64_t a[4], const uint64_t b[4]) {
    int i;
    for (i = 3; i >= 0; i--) {
        if (a[i] != b[i]) return a[i] < b[i];
    }
    return 0;
}

/* Plain integer (< p) -> Montgomery form. */
static inline void mv_fe_to_mont(mv_fe *r, const mv_fe *a) { mv_fe_mul(r, a, &MV_FE_R2); }

/* Montgomery form -> plain integer. */
static inline void mv_fe_from_mont(mv_fe *r, const mv_fe *a) {
    static const mv_fe one = {{1, 0, 0, 0}};
    mv_fe_mul(r, a, &one);
}

/* Parse a big-endian coordinate; 0 when it is not < p. */
static inline int mv_fe_set_be(mv_fe *r, const unsigned char *in32) {
    mv_fe t;
    mv_u256_from_be(t.d, in32);
    if (!mv_u256_lt(t.d, MV_FE_P.d)) return 0;
    mv_fe_to_mont(r, &t);
    return 1;
}

static inline void mv_fe_get_be(unsigned char *out32, const mv_fe *a) {
    mv_fe t;
    mv_fe_from_mont(&t, a);
    mv_u256_to_be(out32, t.d);
}

/* r = a^(p-2) = a^-1 (a != 0), by a fixed 4-bit window. Only used when building tables. */
static void mv_fe_inv(mv_fe *r, const mv_fe *a) {
    static const uint64_t e[4] = {0xfffffffffffffffdULL, 0x00000000ffffffffULL, 0x0000000000000000ULL,
                                  0xffffffff00000001ULL};
    mv_fe pw[16], acc;
    int i, j;
    pw[0] = MV_FE_ONE;
    pw[1] = *a;
    for (i = 2; i < 16; i++) mv_fe_mul(&pw[i], &pw[i - 1], a);
    acc = MV_FE_ONE;
    for (i = 63; i >= 0; i--) {
        unsigned nib = (unsigned)(e[i / 16] >> (4 * (i % 16))) & 15;
        for (j = 0; j < 4; j++) mv_fe_sqr(&acc, &acc);
        if (nib) mv_fe_mul(&acc, &acc, &pw[nib]);
    }
    *r = acc;
}

#endif /* MV_FIELD_IMPL_H */
