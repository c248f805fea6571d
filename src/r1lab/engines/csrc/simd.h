/* Shared helpers of r1lab's fused CPU kernels (decode.c, train.c): 16-lane float vectors in
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

#endif
