/* SPDX-License-Identifier: Apache-2.0
 *
 * SHA-256 (FIPS 180-4): a portable block function and, on x86-64 with the SHA extensions, one
 * using them (selected at run time from cpuid, see mv_init in mv_native.c). One-shot only: the
 * engine always hashes a whole message held in memory.
 */
#ifndef MV_SHA256_IMPL_H
#define MV_SHA256_IMPL_H

#include <stdint.h>
#include <string.h>

static const uint32_t MV_SHA256_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

typedef void (*mv_sha256_blocks_fn)(uint32_t state[8], const unsigned char *data, size_t nblocks);

static inline uint32_t mv_ror32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static inline uint32_t mv_be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void mv_sha256_blocks_portable(uint32_t state[8], const unsigned char *data, size_t nblocks) {
    while (nblocks--) {
        uint32_t w[64], a, b, c, d, e, f, g, h;
        int i;
        for (i = 0; i < 16; i++) w[i] = mv_be32(data + 4 * i);
        for (i = 16; i < 64; i++) {
            uint32_t s0 = mv_ror32(w[i - 15], 7) ^ mv_ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = mv_ror32(w[i - 2], 17) ^ mv_ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        a = state[0]; b = state[1]; c = state[2]; d = state[3];
        e = state[4]; f = state[5]; g = state[6]; h = state[7];
        for (i = 0; i < 64; i++) {
            uint32_t S1 = mv_ror32(e, 6) ^ mv_ror32(e, 11) ^ mv_ror32(e, 25);
            uint32_t ch = (e & f) ^ (~e & g);
            uint32_t t1 = h + S1 + ch + MV_SHA256_K[i] + w[i];
            uint32_t S0 = mv_ror32(a, 2) ^ mv_ror32(a, 13) ^ mv_ror32(a, 22);
            uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
            uint32_t t2 = S0 + maj;
            h = g; g = f; f = e; e = d + t1;
            d = c; c = b; b = a; a = t1 + t2;
        }
        state[0] += a; state[1] += b; state[2] += c; state[3] += d;
        state[4] += e; state[5] += f; state[6] += g; state[7] += h;
        data += 64;
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(MV_NO_ASM)
#define MV_HAVE_SHANI_CODE 1
#include <immintrin.h>

/* The SHA extensions keep the state as ABEF / CDGH lane pairs; rounds go four at a time, the
 * message schedule with sha256msg1/msg2. Structure after Intel's reference ("Intel SHA
 * Extensions", Gulley et al., 2013). */
__attribute__((target("sha,sse4.1,ssse3")))
static void mv_sha256_blocks_shani(uint32_t state[8], const unsigned char *data, size_t nblocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i st0, st1, tmp, msg, w[4], abef, cdgh;
    int g;

    tmp = _mm_loadu_si128((const __m128i *)(const void *)&state[0]);
    st1 = _mm_loadu_si128((const __m128i *)(const void *)&state[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);        /* CDAB */
    st1 = _mm_shuffle_epi32(st1, 0x1B);        /* EFGH */
    st0 = _mm_alignr_epi8(tmp, st1, 8);        /* ABEF */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);     /* CDGH */

    while (nblocks--) {
        abef = st0;
        cdgh = st1;
        for (g = 0; g < 16; g++) {
            if (g < 4) {
                w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(data + 16 * g)), mask);
            }
            msg = _mm_add_epi32(w[g & 3],
                                _mm_loadu_si128((const __m128i *)(const void *)&MV_SHA256_K[4 * g]));
            st1 = _mm_sha256rnds2_epu32(st1, st0, msg);
            if (g >= 3 && g <= 14) { /* schedule words 4(g+1) .. 4(g+1)+3 */
                tmp = _mm_alignr_epi8(w[g & 3], w[(g - 1) & 3], 4);
                w[(g + 1) & 3] = _mm_add_epi32(w[(g + 1) & 3], tmp);
                w[(g + 1) & 3] = _mm_sha256msg2_epu32(w[(g + 1) & 3], w[g & 3]);
            }
            msg = _mm_shuffle_epi32(msg, 0x0E);
            st0 = _mm_sha256rnds2_epu32(st0, st1, msg);
            if (g >= 1 && g <= 12) {
                w[(g - 1) & 3] = _mm_sha256msg1_epu32(w[(g - 1) & 3], w[g & 3]);
            }
        }
        st0 = _mm_add_epi32(st0, abef);
        st1 = _mm_add_epi32(st1, cdgh);
        data += 64;
    }

    tmp = _mm_shuffle_epi32(st0, 0x1B);        /* FEBA */
    st1 = _mm_shuffle_epi32(st1, 0xB1);        /* DCHG */
    st0 = _mm_blend_epi16(tmp, st1, 0xF0);     /* DCBA */
    st1 = _mm_alignr_epi8(st1, tmp, 8);        /* ABEF */
    _mm_storeu_si128((__m128i *)(void *)&state[0], st0);
    _mm_storeu_si128((__m128i *)(void *)&state[4], st1);
}
#endif

/* out32 = SHA-256(msg[0..len)) using the given block function. */
static void mv_sha256_oneshot(unsigned char *out32, const unsigned char *msg, size_t len,
                      mv_sha256_blocks_fn blocks) {
    uint32_t state[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char last[128];
    size_t full = len / 64, rest = len % 64, tail;
    uint64_t bits = (uint64_t)len << 3;
    int i;

    if (full) blocks(state, msg, full);
    memset(last, 0, sizeof(last));
    if (rest) memcpy(last, msg + full * 64, rest);
    last[rest] = 0x80;
    tail = rest < 56 ? 64 : 128;
    for (i = 0; i < 8; i++) last[tail - 1 - i] = (unsigned char)(bits >> (8 * i));
    blocks(state, last, tail / 64);
    for (i = 0; i < 8; i++) {
        out32[4 * i] = (unsigned char)(state[i] >> 24);
        out32[4 * i + 1] = (unsigned char)(state[i] >> 16);
        out32[4 * i + 2] = (unsigned char)(state[i] >> 8);
        out32[4 * i + 3] = (unsigned char)state[i];
    }
}

#endif /* MV_SHA256_IMPL_H */
