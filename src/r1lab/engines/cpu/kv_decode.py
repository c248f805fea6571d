"""A lean no-grad decoder for sampling from Qwen2 / Llama causal LMs, with a preallocated KV cache.

Why: on CPU, a tiny model's decode step is dominated by per-call overhead in the generic
`transformers` forward (mask construction, cache objects, per-layer bookkeeping), not by the
matmuls. This module runs the SAME modules' weights (embedding, RMSNorms, rotary embedding,
projections, MLP activation, LM head) through a short forward of its own:

* K/V live in one buffer per layer, ``(B, kv_heads, P + max_new_tokens, head_dim)``, written in
  place; nothing grows or is copied per step.
* q/k/v and gate/up weights are concatenated once per `generate` call (two matmuls per layer
  instead of five); the weights are read from the model at that moment, so a learner's updates
  are always seen.
* cos/sin for every position of the chunk are computed once, and so is a decode step's
  attention bias (0 / -inf per key slot; a step reads a slice of it instead of building a mask).
* On a float32 CPU model a one-token step runs its non-matmul work in the fused C kernels
  (`kernels`: add + RMSNorm, rotary + K/V write into a transposed key cache, attention, SiLU
  * up; 4 calls per layer next to the 4 matmuls), unless ``R1LAB_CPU=off`` or they cannot be
  built; the prefill and every other case run the PyTorch ops below.

It is used only when `supports_kv_decode(model)` says the model is exactly this architecture
(model type qwen2 or llama, plain `nn.Linear` projections - so no PEFT adapters -, full attention
on every layer, no logit scaling); otherwise `HFGenerator` runs the model's own forward with a
`transformers` cache. Both paths give the same log-probs up to float rounding (tested). Not a
training forward: no autograd, no dropout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from r1lab.engines import cpu
from r1lab.engines.cpu import kernels
from r1lab.engines.cpu.linear import PLAIN_LINEARS, linear, pack_weight

_TYPES = ("qwen2", "llama")
NORM_CLASSES = ("Qwen2RMSNorm", "LlamaRMSNorm")  # x * rsqrt(mean x^2 + eps) * w
SILU_ACTIVATIONS = ("SiLU", "SiLUActivation")


def supports_kv_decode(model) -> bool:
    """True when `KVDecoder` reproduces ``model``'s forward exactly (see module docstring)."""
    cfg = getattr(model, "config", None)
    if getattr(cfg, "model_type", None) not in _TYPES:
        return False
    if any(getattr(cfg, a, None) for a in ("final_logit_softcapping", "logit_scale")):
        return False
    if getattr(cfg, "use_sliding_window", False):
        return False
    if any(t != "full_attention" for t in (getattr(cfg, "layer_types", None) or ())):
        return False
    decoder, head = getattr(model, "model", None), getattr(model, "lm_head", None)
    if decoder is None or type(head) not in PLAIN_LINEARS:
        return False
    for layer in getattr(decoder, "layers", ()):
        a, m = layer.self_attn, layer.mlp
        linears = (a.q_proj, a.k_proj, a.v_proj, a.o_proj, m.gate_proj, m.up_proj, m.down_proj)
        if any(type(x) not in PLAIN_LINEARS for x in linears):
            return False
    return hasattr(decoder, "rotary_emb") and hasattr(decoder, "embed_tokens")


def _cat_bias(*linears: nn.Linear) -> torch.Tensor | None:
    if all(x.bias is None for x in linears):
        return None
    return torch.cat(
        [x.bias if x.bias is not None else x.weight.new_zeros(x.out_features) for x in linears]
    )


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.size(-1) // 2
    rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rot * sin


def _norm_params(module: nn.Module) -> tuple[torch.Tensor, float] | None:
    """(weight, eps) of a known float32 RMSNorm (x * rsqrt(mean x^2 + eps) * w), else None."""
    eps = getattr(module, "variance_epsilon", None)
    if type(module).__name__ not in NORM_CLASSES or not isinstance(eps, float):
        return None
    w = module.weight
    return (w.detach(), eps) if w.dtype is torch.float32 and w.is_contiguous() else None


def _norm(module: nn.Module):
    """The module's RMSNorm as one ``F.rms_norm`` call (equal values in float32: x * rsqrt(mean
    x^2 + eps) * w) for the known classes; other norms run as they are."""
    params = _norm_params(module)
    if params is None:
        return module
    w, eps = params
    return lambda x: F.rms_norm(x, w.shape, w, eps) if x.dtype is torch.float32 else module(x)


def _attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, scale: float
) -> torch.Tensor:
    """softmax(q k^T * scale + bias) v, as batched matmuls (for these tiny shapes on CPU this is
    faster than `scaled_dot_product_attention`'s masked path).

    Shapes: q (B, nh, S, hd); k, v (B, nkv, K, hd); bias (B * nh, S, K) 0 / -inf -> (B, nh, S, hd)
    """
    B, nh, S, hd = q.shape
    nkv, K = k.size(1), k.size(2)
    if nh != nkv:  # grouped-query attention: the heads of one group share their K/V
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
    scores = torch.baddbmm(
        bias,
        q.reshape(B * nh, S, hd),
        k.reshape(B * nh, K, hd).transpose(1, 2),
        alpha=scale,
    )
    return torch.bmm(scores.softmax(-1), v.reshape(B * nh, K, hd)).view(B, nh, S, hd)


class KVDecoder:
    """One chunk's decoding state: the KV buffers, fused weights, rotary tables and key mask.

    Shapes: B rows, P prompt slots (left-padded), K = P + max_new_tokens key slots.
    ``prefill(ids_BP)`` runs the prompts, ``step(ids_B1, start)`` one new token per row at slot
    ``start``; both return the last position's logits (B, V) in float32. Rows that share a prompt
    (``src_B``: the first row holding each row's prompt) run their prompt once: a prompt's K/V
    are computed for its first row and copied to the others, which is exact, since a prompt
    position never attends to anything after it.
    """

    def __init__(
        self, model, attn_BP: torch.Tensor, max_new_tokens: int, src_B: torch.Tensor | None = None
    ) -> None:
        self.model = model
        dec = model.model
        self.dec = dec
        B, P = attn_BP.shape
        K = P + max_new_tokens
        dev = attn_BP.device
        dtype = dec.embed_tokens.weight.dtype
        first = dec.layers[0].self_attn
        self.hd = first.head_dim
        self.nh = first.q_proj.out_features // self.hd
        self.nkv = first.k_proj.out_features // self.hd
        self.layers = []

        def packed(w: torch.Tensor) -> torch.Tensor:  # oneDNN's layout once per call, if on
            return pack_weight(w.detach(), B)

        for layer in dec.layers:
            a, m = layer.self_attn, layer.mlp
            self.layers.append(
                (
                    _norm(layer.input_layernorm),
                    packed(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])),
                    _cat_bias(a.q_proj, a.k_proj, a.v_proj),
                    packed(a.o_proj.weight),
                    a.o_proj.bias,
                    a.scaling,
                    _norm(layer.post_attention_layernorm),
                    packed(torch.cat([m.gate_proj.weight, m.up_proj.weight])),
                    _cat_bias(m.gate_proj, m.up_proj),
                    m.act_fn,
                    packed(m.down_proj.weight),
                    m.down_proj.bias,
                    m.gate_proj.out_features,
                )
            )
        head = model.lm_head
        self.head = (packed(head.weight), head.bias)
        self.final_norm = _norm(dec.norm)
        shape = (B, self.nkv, K, self.hd)
        self.k = [torch.zeros(shape, dtype=dtype, device=dev) for _ in dec.layers]
        self.v = [torch.zeros(shape, dtype=dtype, device=dev) for _ in dec.layers]
        # key validity: prompt padding is never attended; generated slots become valid when fed
        self.key_ok = torch.ones((B, K), dtype=torch.bool, device=dev)
        self.key_ok[:, :P] = attn_BP.bool()
        # a decode step's bias, for every slot: 0 for a valid key, -inf for prompt padding; the
        # query at slot `start` sees slots :start + 1, all of them at or before it (causal)
        step_bias = torch.zeros((B, 1, K), dtype=dtype, device=dev)
        step_bias.masked_fill_(~self.key_ok.unsqueeze(1), float("-inf"))
        self.step_bias = step_bias.repeat_interleave(self.nh, dim=0)  # (B * nh, 1, K)
        prompt_pos = (attn_BP.cumsum(-1) - 1).clamp(min=0)
        gen_pos = prompt_pos[:, -1:] + 1 + torch.arange(max_new_tokens, device=dev)
        pos = torch.cat([prompt_pos, gen_pos], dim=1)
        probe = torch.zeros((), dtype=dtype, device=dev)
        cos, sin = dec.rotary_emb(probe, pos)
        self.cos, self.sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, K, hd)
        self.src = torch.arange(B, device=dev) if src_B is None else src_B.to(dev)
        self.uniq = torch.unique(self.src)  # sorted first rows, one per distinct prompt
        self.expand = torch.searchsorted(self.uniq, self.src)  # row b -> its prompt's index
        self.ck = self._fused_kernels(attn_BP, K)

    def _fused_kernels(self, attn_BP: torch.Tensor, K: int):
        """The C decode kernels (engines/cpu/kernels.py) and their buffers, when they apply:
        float32 CPU, known RMSNorms, SiLU MLPs; else None (the PyTorch step below)."""
        dec = self.dec
        norms = []
        for layer in dec.layers:
            norms += [
                _norm_params(layer.input_layernorm),
                _norm_params(layer.post_attention_layernorm),
            ]
        norms.append(_norm_params(dec.norm))
        acts = {type(layer.mlp.act_fn).__name__ for layer in dec.layers}
        if (
            any(n is None for n in norms)
            or not acts <= set(SILU_ACTIVATIONS)
            or self.nh % self.nkv
            or not kernels.usable(self.cos, self.sin, dec.embed_tokens.weight)
            or cpu.mode() == "off"
        ):
            return None
        ck = kernels.load()
        if ck is None:
            return None
        B, dev = attn_BP.size(0), attn_BP.device
        Sp = (K + 15) // 16 * 16
        self.kt = [
            torch.zeros((B, self.nkv, self.hd, Sp), dtype=torch.float32, device=dev)
            for _ in dec.layers
        ]
        self.norms = norms
        self.cos_c, self.sin_c = self.cos.squeeze(1).contiguous(), self.sin.squeeze(1).contiguous()
        hidden = dec.embed_tokens.weight.size(1)
        inter = self.layers[0][-1]
        self.bufs = {
            "q": torch.empty((B, self.nh, self.hd)),
            "att": torch.empty((B, self.nh * self.hd)),
            "normed": torch.empty((B, hidden)),
            "act": torch.empty((B, inter)),
            "scratch": torch.empty(Sp),
        }
        return ck

    @torch.no_grad()
    def prefill(self, ids_BP: torch.Tensor) -> torch.Tensor:
        rows = self.uniq
        logits = self._forward(ids_BP.index_select(0, rows), 0, rows, self.expand)
        if self.ck is not None:  # the fused step reads keys from the transposed cache
            P = ids_BP.size(1)
            for k, kt in zip(self.k, self.kt):
                kt[..., :P].copy_(k[:, :, :P].transpose(-1, -2))
        return logits.index_select(0, self.expand)

    @torch.no_grad()
    def step(self, ids_B1: torch.Tensor, start: int) -> torch.Tensor:
        if self.ck is not None:
            return self._fused_step(ids_B1, start)
        return self._forward(ids_B1, start, None, None)

    def _fused_step(self, ids_B1: torch.Tensor, start: int) -> torch.Tensor:
        """One token per row at slot ``start`` through the C kernels: per layer 4 matmuls and
        4 kernel calls (add + norm, rotary + K/V write, attention, SiLU * up)."""
        ck, buf, norms = self.ck, self.bufs, self.norms
        x = self.dec.embed_tokens(ids_B1).view(ids_B1.size(0), -1)  # (B, H), updated in place
        normed = buf["normed"]
        ck.add_rmsnorm(x, None, *norms[0], normed)
        for i, layer in enumerate(self.layers):
            _, w_qkv, b_qkv, w_o, b_o, scale, _, w_gu, b_gu, _, w_down, b_down, _ = layer
            qkv = linear(normed, w_qkv, b_qkv)
            ck.rope_store(qkv, self.cos_c, self.sin_c, start, buf["q"], self.kt[i], self.v[i])
            ck.attn_decode(
                buf["q"], self.kt[i], self.v[i], self.key_ok, start + 1, scale, buf["att"],
                buf["scratch"],
            )  # fmt: skip
            ck.add_rmsnorm(x, linear(buf["att"], w_o, b_o), *norms[2 * i + 1], normed)
            ck.silu_mul(linear(normed, w_gu, b_gu), buf["act"])
            ck.add_rmsnorm(x, linear(buf["act"], w_down, b_down), *norms[2 * i + 2], normed)
        return linear(normed, *self.head).float()

    def _bias(self, start: int, end: int, pick) -> torch.Tensor:
        """(U * nh, S, end) additive bias of queries at slots start..end-1."""
        slots = torch.arange(end, device=self.key_ok.device)
        q_slots = slots[start:end].unsqueeze(1)
        causal = slots.unsqueeze(0) <= q_slots  # (S, end)
        mask = (pick(self.key_ok[:, None, None, :end]) & causal) | (slots == q_slots)
        bias = torch.zeros(mask.shape, dtype=self.step_bias.dtype, device=mask.device)
        bias.masked_fill_(~mask, float("-inf"))  # (U, 1, S, end)
        U, S = bias.size(0), end - start
        return bias.expand(U, self.nh, S, end).reshape(U * self.nh, S, end)

    def _forward(self, ids_US, start: int, rows_U, expand_B) -> torch.Tensor:
        """Feed S tokens at slots start.. for rows ``rows_U`` (all rows when None); K/V go to
        every row through ``expand_B`` (row b gets row ``expand_B[b]`` of this batch)."""
        U, S = ids_US.shape
        end = start + S
        pick = (lambda t: t) if rows_U is None else (lambda t: t.index_select(0, rows_U))
        x = self.dec.embed_tokens(ids_US)
        cos, sin = pick(self.cos[:, :, start:end]), pick(self.sin[:, :, start:end])
        # query i (absolute slot start + i) sees valid keys at slots <= start + i, and itself
        # (so a left-padding query is never fully masked: no NaN enters the buffers)
        if S == 1 and rows_U is None:
            bias = self.step_bias[:, :, :end]  # (B * nh, 1, end), a view
        else:
            bias = self._bias(start, end, pick)
        nq, nk = self.nh * self.hd, self.nkv * self.hd
        nqk = self.nh + self.nkv
        for i, layer in enumerate(self.layers):
            ln1, w_qkv, b_qkv, w_o, b_o, scale, ln2, w_gu, b_gu, act, w_down, b_down, inter = layer
            qkv = linear(ln1(x), w_qkv, b_qkv)
            # one rotary pass over the q and k heads together
            qk = _rope(qkv[..., : nq + nk].view(U, S, nqk, self.hd).transpose(1, 2), cos, sin)
            q, k = qk[:, : self.nh], qk[:, self.nh :]
            v = qkv[..., nq + nk :].view(U, S, self.nkv, self.hd).transpose(1, 2)
            if expand_B is None:
                self.k[i][:, :, start:end] = k
                self.v[i][:, :, start:end] = v
                keys, values = self.k[i][:, :, :end], self.v[i][:, :, :end]
            else:  # start == 0: the prompt attends only to itself
                self.k[i][:, :, start:end] = k.index_select(0, expand_B)
                self.v[i][:, :, start:end] = v.index_select(0, expand_B)
                keys, values = k, v
            att = _attention(q, keys, values, bias, scale)
            x = x + linear(att.transpose(1, 2).reshape(U, S, nq), w_o, b_o)
            gu = linear(ln2(x), w_gu, b_gu)
            x = x + linear(act(gu[..., :inter]) * gu[..., inter:], w_down, b_down)
        h = self.final_norm(x[:, -1])
        return linear(h, *self.head).float()
