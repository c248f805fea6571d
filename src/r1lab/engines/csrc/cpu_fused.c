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
void r1_attn_decode(const float *q, const float *kt, const float *vbuf, const uint8_t *key_ok,
                    int64_t end, float scale, float *out, float *scratch, int64_t B, int64_t nh,
                    int64_t nkv, int64_t hd, int64_t S, int64_t Sp) {
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
