/* Fused float32 CPU kernels for one KV-decode step of a Qwen2 / Llama model
 * (r1lab/engines/kv_decode.py, loaded by r1lab/engines/c_kernels.py through ctypes).
 *
 * Why: at decode time every op sees a (rows, hidden) activation of a few KB, so a step of a tiny
 * model costs the fixed overhead of ~45 PyTorch ops per layer, not their arithmetic. These
 * kernels do the non-matmul work of a layer in 4 calls: residual add + RMSNorm, rotary + K/V
 * write, attention over the cache, SiLU(gate) * up. The matmuls stay with oneDNN / PyTorch.
 *
 * All tensors are contiguous float32, row-major. Shapes (B rows, nh query heads, nkv K/V heads,
 * hd head dim, S key slots of the cache, H hidden, I intermediate):
 *   x, y: (B, H)   qkv: (B, (nh + 2 nkv) hd)   cos, sin: (B, S, hd)   q: (B, nh, hd)
 *   kt: (B, nkv, hd, Sp) keys transposed, Sp = S rounded up to 16   vbuf: (B, nkv, S, hd)
 *   key_ok: (B, S) bytes   out: (B, nh hd)   gu: (B, 2 I)
 *
 * Arithmetic: IEEE float32, compiled with -ffp-contract=off (no FMA contraction), so the
 * elementwise kernels round like PyTorch's (x * cos + rot * sin; w * (x * inv_rms)); sums and
 * exp differ from PyTorch's in order / by ~1 ulp (exp is Cephes' expf polynomial).
 */
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

static float dot(const float *a, const float *b, int64_t n) {
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

/* x += delta (when delta is not NULL), then y = w * (x * rsqrt(mean(x^2) + eps)) per row. */
void r1_add_rmsnorm(float *x, const float *delta, const float *w, float eps, float *y,
                    int64_t B, int64_t H) {
    for (int64_t b = 0; b < B; b++) {
        float *xr = x + b * H;
        float *yr = y + b * H;
        if (delta != NULL) {
            const float *dr = delta + b * H;
            for (int64_t j = 0; j < H; j++) xr[j] = xr[j] + dr[j];
        }
        float inv = 1.0f / sqrtf(dot(xr, xr, H) / (float)H + eps);
        for (int64_t j = 0; j < H; j++) yr[j] = w[j] * (xr[j] * inv);
    }
}

static inline void rotate(const float *x, const float *c, const float *s, float *out,
                          int64_t hd) {
    int64_t half = hd / 2;
    for (int64_t d = 0; d < half; d++) out[d] = x[d] * c[d] + (-x[d + half]) * s[d];
    for (int64_t d = half; d < hd; d++) out[d] = x[d] * c[d] + x[d - half] * s[d];
}

/* Rotary on the q and k heads of a step's qkv projection at cache slot `slot`: q goes to q_out,
 * k to the transposed key cache kt (B, nkv, hd, Sp) at column `slot`, v to vbuf (B, nkv, S, hd)
 * at row `slot`. */
void r1_rope_store(const float *qkv, const float *cos, const float *sin, int64_t slot,
                   float *q_out, float *kt, float *vbuf, int64_t B, int64_t nh,
                   int64_t nkv, int64_t hd, int64_t S, int64_t Sp) {
    int64_t width = (nh + 2 * nkv) * hd;
    float tmp[hd];
    for (int64_t b = 0; b < B; b++) {
        const float *row = qkv + b * width;
        const float *c = cos + (b * S + slot) * hd;
        const float *s = sin + (b * S + slot) * hd;
        for (int64_t h = 0; h < nh; h++) rotate(row + h * hd, c, s, q_out + (b * nh + h) * hd, hd);
        for (int64_t g = 0; g < nkv; g++) {
            rotate(row + (nh + g) * hd, c, s, tmp, hd);
            float *col = kt + (b * nkv + g) * hd * Sp + slot;
            for (int64_t d = 0; d < hd; d++) col[d * Sp] = tmp[d];
            memcpy(vbuf + ((b * nkv + g) * S + slot) * hd, row + (nh + nkv + g) * hd,
                   (size_t)hd * sizeof(float));
        }
    }
}

/* softmax(scale * q k^T over the valid keys of slots 0..end-1) v, for every row and head.
 * Keys come from the transposed cache kt (B, nkv, hd, Sp), Sp a multiple of 16 >= S, so that 16
 * keys' scores are one vector per head dimension; values from vbuf (B, nkv, S, hd). `scratch`
 * holds at least Sp floats. Grouped-query heads share their K/V head. */
FMA_FN void r1_attn_decode(const float *q, const float *kt, const float *vbuf, const uint8_t *key_ok,
                    int64_t end, float scale, float *out, float *scratch, int64_t B, int64_t nh,
                    int64_t nkv, int64_t hd, int64_t S, int64_t Sp) {
    FMA_OK
    const v16i iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const v16 neg_inf = (v16){0} - INFINITY;
    int64_t per = nh / nkv;
    int64_t padded = (end + 15) / 16 * 16;
    for (int64_t b = 0; b < B; b++) {
        const uint8_t *ok = key_ok + b * S;
        for (int64_t h = 0; h < nh; h++) {
            const float *qp = q + (b * nh + h) * hd;
            const float *KT = kt + (b * nkv + h / per) * hd * Sp;
            const float *V = vbuf + (b * nkv + h / per) * S * hd;
            float *o = out + (b * nh + h) * hd;
            /* scores of 16 keys at a time; four partial sums over d break the add chain */
            v16 vmax = neg_inf;
            for (int64_t j = 0; j < padded; j += 16) {
                v16 a0 = (v16){0}, a1 = (v16){0}, a2 = (v16){0}, a3 = (v16){0};
                int64_t d = 0;
                for (; d + 4 <= hd; d += 4) {
                    a0 += qp[d] * load16(KT + d * Sp + j);
                    a1 += qp[d + 1] * load16(KT + (d + 1) * Sp + j);
                    a2 += qp[d + 2] * load16(KT + (d + 2) * Sp + j);
                    a3 += qp[d + 3] * load16(KT + (d + 3) * Sp + j);
                }
                for (; d < hd; d++) a0 += qp[d] * load16(KT + d * Sp + j);
                v16 acc = ((a0 + a1) + (a2 + a3)) * scale;
                v16i valid = (iota + (int32_t)j) < (int32_t)end;
                if (j + 16 <= S) {
                    v16u8 bytes;
                    memcpy(&bytes, ok + j, sizeof bytes);
                    valid &= __builtin_convertvector(bytes, v16i) != 0;
                } else {
                    for (int l = 0; l < 16; l++) valid[l] &= (j + l < S && ok[j + l]) ? -1 : 0;
                }
                v16 sc = (v16)(((v16i)acc & valid) | ((v16i)neg_inf & ~valid));
                store16(scratch + j, sc);
                vmax = (v16)(((v16i)vmax & (vmax >= sc)) | ((v16i)sc & (vmax < sc)));
            }
            float m = hmax16(vmax);
            if (m == -INFINITY) { /* no valid key: zeros, never NaN */
                for (int64_t d = 0; d < hd; d++) o[d] = 0.0f;
                continue;
            }
            v16 total = (v16){0};
            for (int64_t j = 0; j < padded; j += 16) {
                v16 sc = load16(scratch + j);
                v16 e = (v16)((v16i)exp16(sc - m) & (sc > -INFINITY));
                store16(scratch + j, e);
                total += e;
            }
            float sum = hsum16(total);
            for (int64_t j = 0; j < padded; j += 16) store16(scratch + j, load16(scratch + j) / sum);
            /* out = sum_j p_j v_j, 16 dims at a time, two partial sums over j */
            int64_t d = 0;
            for (; d + 16 <= hd; d += 16) {
                v16 o0 = (v16){0}, o1 = (v16){0};
                int64_t j = 0;
                for (; j + 2 <= end; j += 2) {
                    o0 += scratch[j] * load16(V + j * hd + d);
                    o1 += scratch[j + 1] * load16(V + (j + 1) * hd + d);
                }
                if (j < end) o0 += scratch[j] * load16(V + j * hd + d);
                store16(o + d, o0 + o1);
            }
            for (; d < hd; d++) {
                float acc = 0.0f;
                for (int64_t j = 0; j < end; j++) acc += scratch[j] * V[j * hd + d];
                o[d] = acc;
            }
        }
    }
}

/* out = silu(gate) * up, gu holding [gate (I) | up (I)] per row; silu(g) = g / (1 + e^-g). */
void r1_silu_mul(const float *gu, float *out, int64_t B, int64_t I) {
    for (int64_t b = 0; b < B; b++) {
        const float *g = gu + b * 2 * I;
        const float *u = g + I;
        float *o = out + b * I;
        int64_t j = 0;
        for (; j + 16 <= I; j += 16) {
            v16 gv = load16(g + j);
            store16(o + j, gv / (1.0f + exp16(-gv)) * load16(u + j));
        }
        for (; j < I; j++) o[j] = g[j] / (1.0f + exp1(-g[j])) * u[j];
    }
}

/* ---- training: forward and backward of the elementwise parts (autograd in c_kernels.py) ---- */

/* y = silu(g) * u over n elements; silu(g) = g / (1 + e^-g) (PyTorch's formula). */
void r1_swiglu_fwd(const float *g, const float *u, float *y, int64_t n) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        v16 gv = load16(g + j);
        store16(y + j, gv / (1.0f + exp16(-gv)) * load16(u + j));
    }
    for (; j < n; j++) y[j] = g[j] / (1.0f + exp1(-g[j])) * u[j];
}

/* Gradients of y = silu(g) * u: du = dy * silu(g), dg = (dy * u) * s * (1 + g * (1 - s)),
 * s = sigmoid(g) (the order of PyTorch's mul and silu_backward). */
void r1_swiglu_bwd(const float *dy, const float *g, const float *u, float *dg, float *du,
                   int64_t n) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        v16 gv = load16(g + j), dv = load16(dy + j);
        v16 e = 1.0f + exp16(-gv);
        v16 s = 1.0f / e;
        store16(du + j, dv * (gv / e));
        store16(dg + j, ((dv * load16(u + j)) * s) * (1.0f + gv * (1.0f - s)));
    }
    for (; j < n; j++) {
        float e = 1.0f + exp1(-g[j]);
        float s = 1.0f / e;
        du[j] = dy[j] * (g[j] / e);
        dg[j] = ((dy[j] * u[j]) * s) * (1.0f + g[j] * (1.0f - s));
    }
}

/* y = w * (x * r), r = rsqrt(mean(x^2) + eps) per row, r saved in inv (rows). */
void r1_rmsnorm_fwd(const float *x, const float *w, float eps, float *y, float *inv, int64_t rows,
                    int64_t H) {
    for (int64_t b = 0; b < rows; b++) {
        const float *xr = x + b * H;
        float *yr = y + b * H;
        float r = 1.0f / sqrtf(dot(xr, xr, H) / (float)H + eps);
        inv[b] = r;
        for (int64_t j = 0; j < H; j++) yr[j] = w[j] * (xr[j] * r);
    }
}

/* Gradients of y = w * (x * r): with n = x * r and g = dy * w,
 * dx = r * (g - n * mean(g * n)); dw += sum over rows of dy * n (accumulated in double; dw_acc
 * holds H doubles, zeroed by the caller). */
void r1_rmsnorm_bwd(const float *dy, const float *x, const float *w, const float *inv, float *dx,
                    double *dw_acc, int64_t rows, int64_t H) {
    for (int64_t b = 0; b < rows; b++) {
        const float *xr = x + b * H, *dr = dy + b * H;
        float *o = dx + b * H;
        float r = inv[b];
        float c = 0.0f;
        int64_t j = 0;
        if (H >= 16) {
            v16 acc = (v16){0};
            for (; j + 16 <= H; j += 16)
                acc += (load16(dr + j) * load16(w + j)) * (load16(xr + j) * r);
            c = hsum16(acc);
        }
        for (; j < H; j++) c += (dr[j] * w[j]) * (xr[j] * r);
        c = c / (float)H;
        for (j = 0; j < H; j++) {
            float n = xr[j] * r;
            o[j] = r * (dr[j] * w[j] - n * c);
            dw_acc[j] += (double)(dr[j] * n);
        }
    }
}

/* dst (cols, rows) = src (rows, cols)^T, src rows `ld` floats apart; 32 x 32 tiles. */
void r1_transpose(const float *src, int64_t rows, int64_t cols, int64_t ld, float *dst) {
    for (int64_t i0 = 0; i0 < rows; i0 += 32) {
        int64_t i1 = i0 + 32 < rows ? i0 + 32 : rows;
        for (int64_t j0 = 0; j0 < cols; j0 += 32) {
            int64_t j1 = j0 + 32 < cols ? j0 + 32 : cols;
            for (int64_t j = j0; j < j1; j++)
                for (int64_t i = i0; i < i1; i++) dst[j * rows + i] = src[i * ld + j];
        }
    }
}

/* ---- training attention (autograd in fused_modules.py) --------------------------------------
 * q (B, nh, T, hd), k / v (B, nkv, S, hd), mask (B or 1, T, S) bytes (1 = may attend; batch
 * stride mask_bs, 0 when shared), out / dout (B, T, nh, hd) (the o_proj input layout),
 * lse (B, nh, T) the log-sum-exp of each query's scaled scores (-inf: no valid key, zero output).
 * `scratch` holds 2 hd Sp + 2 Sp floats, Sp = S rounded up to 16. */

static void transpose_keys(const float *K, int64_t S, int64_t hd, int64_t Sp, float *KT) {
    for (int64_t j = 0; j < S; j++)
        for (int64_t d = 0; d < hd; d++) KT[d * Sp + j] = K[j * hd + d];
    for (int64_t d = 0; d < hd; d++)
        for (int64_t j = S; j < Sp; j++) KT[d * Sp + j] = 0.0f;
}

/* sc[0..Sp) = scale * q . k_j for valid keys (mask row `mrow`, j < S), -inf elsewhere; the max */
FMA_FN static float score_row(const float *qi, const float *KT, const uint8_t *mrow, int64_t S,
                              int64_t Sp, int64_t hd, float scale, float *sc) {
    FMA_OK
    const v16i iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const v16 neg_inf = (v16){0} - INFINITY;
    v16 vmax = neg_inf;
    for (int64_t j = 0; j < Sp; j += 16) {
        v16 a0 = (v16){0}, a1 = (v16){0};
        int64_t d = 0;
        for (; d + 2 <= hd; d += 2) {
            a0 += qi[d] * load16(KT + d * Sp + j);
            a1 += qi[d + 1] * load16(KT + (d + 1) * Sp + j);
        }
        if (d < hd) a0 += qi[d] * load16(KT + d * Sp + j);
        v16 acc = (a0 + a1) * scale;
        v16i valid = (iota + (int32_t)j) < (int32_t)S;
        for (int l = 0; l < 16; l++) valid[l] &= (j + l < S && mrow[j + l]) ? -1 : 0;
        v16 s = (v16)(((v16i)acc & valid) | ((v16i)neg_inf & ~valid));
        store16(sc + j, s);
        vmax = (v16)(((v16i)vmax & (vmax >= s)) | ((v16i)s & (vmax < s)));
    }
    return hmax16(vmax);
}

FMA_FN void r1_attn_fwd(const float *q, const float *k, const float *v, const uint8_t *mask,
                        int64_t mask_bs, float scale, float *out, float *lse, float *scratch,
                        int64_t B, int64_t nh, int64_t nkv, int64_t T, int64_t S, int64_t hd) {
    FMA_OK
    int64_t per = nh / nkv, Sp = (S + 15) / 16 * 16;
    float *KT = scratch, *sc = scratch + 2 * hd * Sp;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < nh; h++) {
            const float *K = k + (b * nkv + h / per) * S * hd;
            const float *V = v + (b * nkv + h / per) * S * hd;
            if (h % per == 0) transpose_keys(K, S, hd, Sp, KT);
            for (int64_t i = 0; i < T; i++) {
                const float *qi = q + ((b * nh + h) * T + i) * hd;
                float *o = out + ((b * T + i) * nh + h) * hd;
                float m = score_row(qi, KT, mask + b * mask_bs + i * S, S, Sp, hd, scale, sc);
                float *l = lse + (b * nh + h) * T + i;
                for (int64_t d = 0; d < hd; d++) o[d] = 0.0f;
                if (m == -INFINITY) {
                    *l = -INFINITY;
                    continue;
                }
                v16 total = (v16){0};
                for (int64_t j = 0; j < Sp; j += 16) {
                    v16 s = load16(sc + j);
                    v16 e = (v16)((v16i)exp16(s - m) & (s > -INFINITY));
                    store16(sc + j, e);
                    total += e;
                }
                float sum = hsum16(total);
                *l = m + logf(sum);
                float inv = 1.0f / sum;
                int64_t d = 0;
                for (; d + 16 <= hd; d += 16) {
                    v16 o0 = (v16){0}, o1 = (v16){0};
                    int64_t j = 0;
                    for (; j + 2 <= S; j += 2) {
                        o0 += sc[j] * load16(V + j * hd + d);
                        o1 += sc[j + 1] * load16(V + (j + 1) * hd + d);
                    }
                    if (j < S) o0 += sc[j] * load16(V + j * hd + d);
                    store16(o + d, (o0 + o1) * inv);
                }
                for (; d < hd; d++) {
                    float acc = 0.0f;
                    for (int64_t j = 0; j < S; j++) acc += sc[j] * V[j * hd + d];
                    o[d] = acc * inv;
                }
            }
        }
    }
}

/* dq (B, nh, T, hd); dk, dv (B, nkv, S, hd), zeroed by the caller (heads of a group add up):
 * p = exp(s - lse), dP = dO v^T, dS = p (dP - dO . O), dq = scale dS k, dk = scale dS^T q,
 * dv = p^T dO. */
FMA_FN void r1_attn_bwd(const float *q, const float *k, const float *v, const uint8_t *mask,
                        int64_t mask_bs, float scale, const float *out, const float *dout,
                        const float *lse, float *dq, float *dk, float *dv, float *scratch,
                        int64_t B, int64_t nh, int64_t nkv, int64_t T, int64_t S, int64_t hd) {
    FMA_OK
    int64_t per = nh / nkv, Sp = (S + 15) / 16 * 16;
    float *KT = scratch, *VT = scratch + hd * Sp, *p = scratch + 2 * hd * Sp, *ds = p + Sp;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < nh; h++) {
            int64_t g = b * nkv + h / per;
            const float *K = k + g * S * hd, *V = v + g * S * hd;
            float *dK = dk + g * S * hd, *dV = dv + g * S * hd;
            if (h % per == 0) {
                transpose_keys(K, S, hd, Sp, KT);
                transpose_keys(V, S, hd, Sp, VT);
            }
            for (int64_t i = 0; i < T; i++) {
                const float *qi = q + ((b * nh + h) * T + i) * hd;
                const float *oi = out + ((b * T + i) * nh + h) * hd;
                const float *doi = dout + ((b * T + i) * nh + h) * hd;
                float *dqi = dq + ((b * nh + h) * T + i) * hd;
                float l = lse[(b * nh + h) * T + i];
                for (int64_t d = 0; d < hd; d++) dqi[d] = 0.0f;
                if (l == -INFINITY) continue;
                score_row(qi, KT, mask + b * mask_bs + i * S, S, Sp, hd, scale, p);
                float Di = dot(doi, oi, hd);
                for (int64_t j = 0; j < Sp; j += 16) {
                    v16 s = load16(p + j);
                    v16 pj = (v16)((v16i)exp16(s - l) & (s > -INFINITY));
                    store16(p + j, pj);
                    v16 a0 = (v16){0}, a1 = (v16){0};
                    int64_t d = 0;
                    for (; d + 2 <= hd; d += 2) {
                        a0 += doi[d] * load16(VT + d * Sp + j);
                        a1 += doi[d + 1] * load16(VT + (d + 1) * Sp + j);
                    }
                    if (d < hd) a0 += doi[d] * load16(VT + d * Sp + j);
                    store16(ds + j, pj * ((a0 + a1) - Di) * scale);
                }
                for (int64_t j = 0; j < S; j++) {
                    float pj = p[j], dsj = ds[j];
                    if (pj == 0.0f) continue;
                    const float *kj = K + j * hd;
                    float *dkj = dK + j * hd, *dvj = dV + j * hd;
                    int64_t d = 0;
                    for (; d + 16 <= hd; d += 16) {
                        store16(dqi + d, load16(dqi + d) + dsj * load16(kj + d));
                        store16(dkj + d, load16(dkj + d) + dsj * load16(qi + d));
                        store16(dvj + d, load16(dvj + d) + pj * load16(doi + d));
                    }
                    for (; d < hd; d++) {
                        dqi[d] += dsj * kj[d];
                        dkj[d] += dsj * qi[d];
                        dvj[d] += pj * doi[d];
                    }
                }
            }
        }
    }
}

/* Rotary for training. Forward: x (B, T, nh hd) rows `xs` floats apart -> y (B, nh, T, hd),
 * y = x cos + rotate_half(x) sin; backward: dy (B, nh, T, hd) -> dx (B, T, nh hd),
 * dx = dy cos + rotate_half^T(dy sin). cos / sin (B or 1, T, hd), batch stride cs_bs. */
void r1_rope_fwd(const float *x, int64_t xs, const float *cos, const float *sin, int64_t cs_bs,
                 float *y, int64_t B, int64_t T, int64_t nh, int64_t hd) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            const float *c = cos + b * cs_bs + t * hd, *s = sin + b * cs_bs + t * hd;
            for (int64_t h = 0; h < nh; h++)
                rotate(x + (b * T + t) * xs + h * hd, c, s, y + ((b * nh + h) * T + t) * hd, hd);
        }
}

void r1_rope_bwd(const float *dy, const float *cos, const float *sin, int64_t cs_bs, float *dx,
                 int64_t B, int64_t T, int64_t nh, int64_t hd) {
    int64_t half = hd / 2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            const float *c = cos + b * cs_bs + t * hd, *s = sin + b * cs_bs + t * hd;
            for (int64_t h = 0; h < nh; h++) {
                const float *g = dy + ((b * nh + h) * T + t) * hd;
                float *o = dx + (b * T + t) * nh * hd + h * hd;
                for (int64_t d = 0; d < half; d++) o[d] = g[d] * c[d] + g[d + half] * s[d + half];
                for (int64_t d = half; d < hd; d++)
                    o[d] = g[d] * c[d] + (-(g[d - half] * s[d - half]));
            }
        }
}
