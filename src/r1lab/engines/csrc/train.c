/* Fused float32 CPU kernels for training (r1lab/engines/fused_modules.py: autograd functions;
 * r1lab/engines/cpu_kernels.py: the transposed copies of the oneDNN linear backward). Same
 * conventions as decode.c: contiguous row-major float32, -ffp-contract=off except in FMA_FN
 * functions. */
#include "simd.h"

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
                float m = score_row(qi, KT, mask + b * mask_bs + i * S, S, S, Sp, hd, scale, sc);
                float *l = lse + (b * nh + h) * T + i;
                if (m == -INFINITY) {
                    for (int64_t d = 0; d < hd; d++) o[d] = 0.0f;
                    *l = -INFINITY;
                    continue;
                }
                float sum = exp_shifted(sc, S, m);
                *l = m + logf(sum);
                weighted_rows(o, sc, V, S, hd, 1.0f / sum);
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
                score_row(qi, KT, mask + b * mask_bs + i * S, S, S, Sp, hd, scale, p);
                float Di = dot(doi, oi, hd);
                for (int64_t j = 0; j < Sp; j += 16) {
                    v16 s = load16(p + j);
                    v16 pj = (v16)((v16i)exp16(s - l) & (s > -INFINITY));
                    store16(p + j, pj);
                    store16(ds + j, pj * (dot_cols16(doi, VT, Sp, j, hd) - Di) * scale);
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
