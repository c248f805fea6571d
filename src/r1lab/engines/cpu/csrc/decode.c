/* Fused float32 CPU kernels for one KV-decode step of a Qwen2 / Llama model
 * (r1lab/engines/cpu/kv_decode.py), loaded by r1lab/engines/cpu/kernels.py (ctypes).
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
 * Arithmetic: IEEE float32, compiled with -ffp-contract=off (no FMA contraction; FMA_FN
 * functions, the matmul-like loops, may contract), so the
 * elementwise kernels round like PyTorch's (x * cos + rot * sin; w * (x * inv_rms)); sums and
 * exp differ from PyTorch's in order / by ~1 ulp (exp is Cephes' expf polynomial).
 */
#include "simd.h"

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
    int64_t per = nh / nkv;
    for (int64_t b = 0; b < B; b++) {
        const uint8_t *ok = key_ok + b * S;
        for (int64_t h = 0; h < nh; h++) {
            const float *KT = kt + (b * nkv + h / per) * hd * Sp;
            const float *V = vbuf + (b * nkv + h / per) * S * hd;
            float *o = out + (b * nh + h) * hd;
            float m = score_row(q + (b * nh + h) * hd, KT, ok, end, S, Sp, hd, scale, scratch);
            if (m == -INFINITY) { /* no valid key: zeros, never NaN */
                for (int64_t d = 0; d < hd; d++) o[d] = 0.0f;
                continue;
            }
            float sum = exp_shifted(scratch, end, m);
            weighted_rows(o, scratch, V, end, hd, 1.0f / sum);
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
