/* SPDX-License-Identifier: Apache-2.0
 *
 * The PASSporT scanner behind mv_shaken_scan (mv.h): cuts a compact JWS and recognises the one
 * claims shape every SHAKEN signer writes, so the verifier's usual call needs no Python decoding.
 *
 * It is a recogniser, not a JSON parser: it accepts a strict subset of what passport.py accepts
 * (no whitespace, no string escapes, exactly the five SHAKEN claims once each, printable ASCII)
 * and says "not this shape" for anything else, which passport.py then decodes and judges. So it
 * never has to be right about the hard corners of JSON; it only has to be right when it says yes
 * (tests/test_scan.py holds it to passport.decode_shaken on random and mutated tokens).
 * What the claims mean (attest values, number forms, freshness) is judged in Python.
 *
 * Hostile input: every read is bounded by the segment's length; decoding writes into a fixed
 * stack buffer whose size is checked first; no allocation, no recursion.
 */
#ifndef MV_PASSPORT_IMPL_H
#define MV_PASSPORT_IMPL_H

#include <stddef.h>
#include <stdint.h>

#define MV_SCAN_MAX_CLAIMS 4096 /* decoded claims bytes; a SHAKEN claim set is ~150-300 */
#define MV_SCAN_MAX_DEST 8      /* dest.tn entries; more go to the general decoder */
#define MV_SCAN_MAX_IAT_DIGITS 15

/* base64url alphabet value + 1, 0 outside it ("+/=" and padding are not base64url). */
static const unsigned char mv_b64url[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
};

/* Strict unpadded base64url (RFC 4648 §5, canonical trailing bits as §3.5 asks) of in[0..len)
 * into out (capacity cap). The decoded length, or -1 when the text is not canonical base64url or
 * does not fit. */
static long mv_b64url_decode(unsigned char *out, size_t cap, const unsigned char *in, size_t len) {
    size_t full = len / 4, rem = len % 4, i, o = 0;
    unsigned v[4];
    if (rem == 1) return -1;
    if (full * 3 + (rem ? rem - 1 : 0) > cap) return -1;
    for (i = 0; i < full; i++) {
        const unsigned char *q = in + 4 * i;
        int k;
        for (k = 0; k < 4; k++) {
            v[k] = mv_b64url[q[k]];
            if (v[k] == 0) return -1;
            v[k]--;
        }
        out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
        out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
    }
    if (rem) {
        const unsigned char *q = in + 4 * full;
        size_t k;
        for (k = 0; k < rem; k++) {
            v[k] = mv_b64url[q[k]];
            if (v[k] == 0) return -1;
            v[k]--;
        }
        out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (rem == 2) {
            if (v[1] & 15) return -1; /* stray bits: a second spelling of the same bytes */
        } else {
            out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
            if (v[2] & 3) return -1;
        }
    }
    return (long)o;
}

/* A bounded cursor over the decoded claims. */
typedef struct {
    const unsigned char *p;
    size_t len, at;
} mv_cur;

static int mv_take(mv_cur *c, unsigned char ch) {
    if (c->at < c->len && c->p[c->at] == ch) {
        c->at++;
        return 1;
    }
    return 0;
}

/* A JSON string without escapes, of printable ASCII: [*start, *start + *n) inside the buffer. */
static int mv_string(mv_cur *c, size_t *start, size_t *n) {
    size_t i;
    if (!mv_take(c, '"')) return 0;
    for (i = c->at; i < c->len; i++) {
        unsigned char ch = c->p[i];
        if (ch == '"') {
            *start = c->at;
            *n = i - c->at;
            c->at = i + 1;
            return 1;
        }
        if (ch < 0x20 || ch > 0x7e || ch == '\\') return 0;
    }
    return 0;
}

/* The literal "name": (a key followed by its colon). */
static int mv_key_is(mv_cur *c, const char *name, size_t n) {
    size_t s, k;
    if (!mv_string(c, &s, &k) || k != n || memcmp(c->p + s, name, n) != 0) return 0;
    return mv_take(c, ':');
}

typedef struct {
    size_t attest, attest_n, orig, orig_n, origid, origid_n;
    size_t dest[MV_SCAN_MAX_DEST], dest_n[MV_SCAN_MAX_DEST], ndest;
    long long iat;
} mv_claims;

enum { MV_C_ATTEST = 1, MV_C_DEST = 2, MV_C_IAT = 4, MV_C_ORIG = 8, MV_C_ORIGID = 16, MV_C_ALL = 31 };

/* Which SHAKEN claim a key names (0: none of them). */
static int mv_claim_of(const unsigned char *k, size_t n) {
    switch (n) {
    case 3: return memcmp(k, "iat", 3) == 0 ? MV_C_IAT : 0;
    case 4: return memcmp(k, "dest", 4) == 0 ? MV_C_DEST : memcmp(k, "orig", 4) == 0 ? MV_C_ORIG : 0;
    case 6: return memcmp(k, "attest", 6) == 0 ? MV_C_ATTEST : memcmp(k, "origid", 6) == 0 ? MV_C_ORIGID : 0;
    default: return 0;
    }
}

/* A non-negative JSON integer of at most MV_SCAN_MAX_IAT_DIGITS digits, with nothing of a
 * fraction or exponent after it. */
static int mv_integer(mv_cur *c, long long *out) {
    size_t start = c->at;
    long long v = 0;
    while (c->at < c->len && c->p[c->at] >= '0' && c->p[c->at] <= '9') {
        if (c->at - start == MV_SCAN_MAX_IAT_DIGITS) return 0;
        v = v * 10 + (c->p[c->at] - '0');
        c->at++;
    }
    if (c->at == start) return 0;
    if (c->p[start] == '0' && c->at - start > 1) return 0; /* leading zero: not JSON */
    if (c->at < c->len && (c->p[c->at] == '.' || c->p[c->at] == 'e' || c->p[c->at] == 'E')) return 0;
    *out = v;
    return 1;
}

/* {"attest":..,"dest":{"tn":[..]},"iat":..,"orig":{"tn":..},"origid":..} in any member order. */
static int mv_shaken_claims(mv_claims *cl, const unsigned char *buf, size_t len) {
    mv_cur c = {buf, len, 0};
    int seen = 0;
    if (!mv_take(&c, '{')) return 0;
    for (;;) {
        size_t ks, kn;
        int which;
        if (!mv_string(&c, &ks, &kn) || !mv_take(&c, ':')) return 0;
        which = mv_claim_of(buf + ks, kn);
        if (which == 0 || (seen & which)) return 0; /* another claim, or a duplicate */
        seen |= which;
        switch (which) {
        case MV_C_ATTEST:
            if (!mv_string(&c, &cl->attest, &cl->attest_n)) return 0;
            break;
        case MV_C_ORIGID:
            if (!mv_string(&c, &cl->origid, &cl->origid_n)) return 0;
            break;
        case MV_C_IAT:
            if (!mv_integer(&c, &cl->iat)) return 0;
            break;
        case MV_C_ORIG:
            if (!mv_take(&c, '{') || !mv_key_is(&c, "tn", 2) || !mv_string(&c, &cl->orig, &cl->orig_n) ||
                !mv_take(&c, '}'))
                return 0;
            break;
        default: /* MV_C_DEST */
            if (!mv_take(&c, '{') || !mv_key_is(&c, "tn", 2) || !mv_take(&c, '[')) return 0;
            cl->ndest = 0;
            do {
                if (cl->ndest == MV_SCAN_MAX_DEST) return 0;
                if (!mv_string(&c, &cl->dest[cl->ndest], &cl->dest_n[cl->ndest])) return 0;
                cl->ndest++;
            } while (mv_take(&c, ','));
            if (!mv_take(&c, ']') || !mv_take(&c, '}')) return 0;
            break;
        }
        if (mv_take(&c, ',')) continue;
        if (!mv_take(&c, '}')) return 0;
        break;
    }
    return seen == MV_C_ALL && c.at == len;
}

/* One token: 1 and the outputs filled when it is the SHAKEN shape, else 0. *sig_end is where the
 * signing input ends (the second dot); line gets attest '"' orig '"' origid ('"' dest)+, at most
 * the decoded claims' length (each field is a substring of them, each separator replaces a quote). */
static int mv_scan_one(const unsigned char *tok, size_t len, size_t *sig_end, unsigned char sig[64],
                       long long *iat, unsigned char *line, size_t *line_n) {
    unsigned char buf[MV_SCAN_MAX_CLAIMS];
    const unsigned char *d1, *d2;
    mv_claims cl;
    long n;
    size_t o = 0, i;
    d1 = memchr(tok, '.', len);
    if (d1 == NULL) return 0;
    d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL) return 0;
    if (mv_b64url_decode(sig, 64, d2 + 1, len - (size_t)(d2 + 1 - tok)) != 64) return 0;
    n = mv_b64url_decode(buf, sizeof(buf), d1 + 1, (size_t)(d2 - d1 - 1));
    if (n < 0 || !mv_shaken_claims(&cl, buf, (size_t)n)) return 0;
#define MV_PUT(start, count)                    \
    do {                                        \
        memcpy(line + o, buf + (start), count); \
        o += (count);                           \
    } while (0)
    MV_PUT(cl.attest, cl.attest_n);
    line[o++] = '"';
    MV_PUT(cl.orig, cl.orig_n);
    line[o++] = '"';
    MV_PUT(cl.origid, cl.origid_n);
    for (i = 0; i < cl.ndest; i++) {
        line[o++] = '"';
        MV_PUT(cl.dest[i], cl.dest_n[i]);
    }
#undef MV_PUT
    *line_n = o;
    *sig_end = (size_t)(d2 - tok);
    *iat = cl.iat;
    return 1;
}

#endif /* MV_PASSPORT_IMPL_H */
