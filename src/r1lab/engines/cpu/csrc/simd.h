/* Helpers of r1lab's CPU decode kernels (decode.c): 16-lane float vectors in
 * GCC / clang vector extensions (no intrinsics: the compiler maps them to AVX-512, AVX2 or NEON
 * with -march=native), tree reductions, a Cephes expf polynomial, a dot product, rotary. */
#ifndef R1LAB_SIMD_H
#define R1LAB_SIMD_H
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Matmul-like loops may contract a * b + c into an FMA (FMA_FN on the function, FMA_OK first in
 * its body); the elementwise kernels keep -ffp-contract=off, PyTorch's rounding. */
#if defined(__clang__)
#define FMA_FN
#define FMA_OK _Pragma("clang fp contract(fast)")
#else
#define FMA_FN __attribute__((optimize("fp-contract=fast")))
#define FMA_OK
#endif

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef uint8_t v16u8 __attribute__((vector_size(16)));

static inline v16 load16(const float *p) {
    v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store16(float *p, v16 v) { memcpy(p, &v, sizeof v); }

typedef float v8 __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));

/* tree reductions of the 16 lanes (halves added / compared, then quarters) */
static inline float hsum16(v16 v) {
    v8 lo, hi;
    memcpy(&lo, &v, sizeof lo);
    memcpy(&hi, (char *)&v + sizeof lo, sizeof hi);
    v8 h = lo + hi;
    v4 a, c;
    memcpy(&a, &h, sizeof a);
    memcpy(&c, (char *)&h + sizeof a, sizeof c);
    v4 r = a + c;
    return (r[0] + r[2]) + (r[1] + r[3]);
}

static inline float hmax16(v16 v) {
    float m = v[0];
    v8 lo, hi;
    memcpy(&lo, &v, sizeof lo);
    memcpy(&hi, (char *)&v + sizeof lo, sizeof hi);
    for (int i = 0; i < 8; i++) lo[i] = lo[i] > hi[i] ? lo[i] : hi[i];
    for (int i = 0; i < 4; i++) lo[i] = lo[i] > lo[i + 4] ? lo[i] : lo[i + 4];
    for (int i = 0; i < 4; i++) m = lo[i] > m ? lo[i] : m;
    return m;
}

/* e^x for 16 lanes: Cephes expf (range reduction by ln 2, degree-6 polynomial), ~1 ulp. */
static inline v16 exp16(v16 x) {
    const v16 one = (v16){0} + 1.0f;
    v16i lo = x < -87.33654f, hi = x > 88.37626f;
    x = (v16)(((v16i)x & ~lo) | ((v16i)((v16){0} - 87.33654f) & lo));
    x = (v16)(((v16i)x & ~hi) | ((v16i)((v16){0} + 88.37626f) & hi));
    v16 fx = x * 1.44269504088896341f + 0.5f;
    v16 t = __builtin_convertvector(__builtin_convertvector(fx, v16i), v16);
    t = t - (v16)((v16i)one & (t > fx)); /* floor */
    x = x - t * 0.693359375f;
    x = x - t * -2.12194440e-4f;
    v16 z = x * x;
    v16 y = (v16){0} + 1.9875691500e-4f;
    y = y * x + 1.3981999507e-3f;
    y = y * x + 8.3334519073e-3f;
    y = y * x + 4.1665795894e-2f;
    y = y * x + 1.6666665459e-1f;
    y = y * x + 5.0000001201e-1f;
    y = y * z + x + 1.0f;
    v16i e = (__builtin_convertvector(t, v16i) + 127) << 23;
    return y * (v16)e;
}

static inline float exp1(float x) {
    v16 v = (v16){0} + x;
    return exp16(v)[0];
}

static inline float dot(const float *a, const float *b, int64_t n) {
    int64_t d = 0;
    float s = 0.0f;
    if (n >= 16) {
        v16 acc = (v16){0};
        for (; d + 16 <= n; d += 16) acc += load16(a + d) * load16(b + d);
        s = hsum16(acc);
    }
    for (; d < n; d++) s += a[d] * b[d];
    return s;
}

static inline void rotate(const float *x, const float *c, const float *s, float *out,
                          int64_t hd) {
    int64_t half = hd / 2;
    for (int64_t d = 0; d < half; d++) out[d] = x[d] * c[d] + (-x[d + half]) * s[d];
    for (int64_t d = half; d < hd; d++) out[d] = x[d] * c[d] + x[d - half] * s[d];
}


/* ---- attention pieces ---- */

/* x . T[:, j .. j + 16) for a (hd, Sp) row-major block T: 16 columns at once, four partial
 * sums over d to break the add chain. */
FMA_FN static inline v16 dot_cols16(const float *x, const float *T, int64_t Sp, int64_t j,
                                    int64_t hd) {
    FMA_OK
    v16 a0 = (v16){0}, a1 = (v16){0}, a2 = (v16){0}, a3 = (v16){0};
    int64_t d = 0;
    for (; d + 4 <= hd; d += 4) {
        a0 += x[d] * load16(T + d * Sp + j);
        a1 += x[d + 1] * load16(T + (d + 1) * Sp + j);
        a2 += x[d + 2] * load16(T + (d + 2) * Sp + j);
        a3 += x[d + 3] * load16(T + (d + 3) * Sp + j);
    }
    for (; d < hd; d++) a0 += x[d] * load16(T + d * Sp + j);
    return (a0 + a1) + (a2 + a3);
}

/* sc[0 .. n rounded up to 16) = scale * q . KT[:, j] for the keys j < n with mrow[j] != 0 (a
 * row of row_len >= n bytes), -inf elsewhere; returns the largest score. KT: (hd, Sp). */
FMA_FN static inline float score_row(const float *q, const float *KT, const uint8_t *mrow,
                                     int64_t n, int64_t row_len, int64_t Sp, int64_t hd,
                                     float scale, float *sc) {
    FMA_OK
    const v16i iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const v16 neg_inf = (v16){0} - INFINITY;
    v16 vmax = neg_inf;
    for (int64_t j = 0; j < n; j += 16) {
        v16 acc = dot_cols16(q, KT, Sp, j, hd) * scale;
        v16i valid = (iota + (int32_t)j) < (int32_t)n;
        if (j + 16 <= row_len) {
            v16u8 bytes;
            memcpy(&bytes, mrow + j, sizeof bytes);
            valid &= __builtin_convertvector(bytes, v16i) != 0;
        } else {
            for (int l = 0; l < 16; l++) valid[l] &= (j + l < n && mrow[j + l]) ? -1 : 0;
        }
        v16 s = (v16)(((v16i)acc & valid) | ((v16i)neg_inf & ~valid));
        store16(sc + j, s);
        vmax = (v16)(((v16i)vmax & (vmax >= s)) | ((v16i)s & (vmax < s)));
    }
    return hmax16(vmax);
}

/* sc[j] = e^(sc[j] - m), 0 where sc[j] is -inf, for j < n rounded up to 16; returns the sum. */
static inline float exp_shifted(float *sc, int64_t n, float m) {
    v16 total = (v16){0};
    for (int64_t j = 0; j < n; j += 16) {
        v16 s = load16(sc + j);
        v16 e = (v16)((v16i)exp16(s - m) & (s > -INFINITY));
        store16(sc + j, e);
        total += e;
    }
    return hsum16(total);
}

/* o[0 .. hd) = scale * sum_{j < n} p[j] V[j, :] (V rows hd floats apart): 16 dims at a time,
 * two partial sums over j. */
FMA_FN static inline void weighted_rows(float *o, const float *p, const float *V, int64_t n,
                                        int64_t hd, float scale) {
    FMA_OK
    int64_t d = 0;
    for (; d + 16 <= hd; d += 16) {
        v16 o0 = (v16){0}, o1 = (v16){0};
        int64_t j = 0;
        for (; j + 2 <= n; j += 2) {
            o0 += p[j] * load16(V + j * hd + d);
            o1 += p[j + 1] * load16(V + (j + 1) * hd + d);
        }
        if (j < n) o0 += p[j] * load16(V + j * hd + d);
        store16(o + d, (o0 + o1) * scale);
    }
    for (; d < hd; d++) {
        float acc = 0.0f;
        for (int64_t j = 0; j < n; j++) acc += p[j] * V[j * hd + d];
        o[d] = acc * scale;
    }
}


#endif
