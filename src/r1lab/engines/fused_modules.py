"""RMSNorm, SwiGLU MLP and attention modules whose non-matmul work runs in the fused C kernels.

`transformers`' Qwen2 / Llama RMSNorm runs ~6 ops forward and ~10 in autograd's backward, the
MLP's ``silu(gate) * up`` 2 forward and 3 backward (saving the SiLU output as well), rotary ~7
per tensor and SDPA's CPU flash kernel is slow at short sequences. Here each is one C pass
(`c_kernels`) inside an autograd function:

    RMSNorm   y = w * (x * r),  r = rsqrt(mean(x^2) + eps)     x, y: (..., H); saves x, r
              dx = r * (g - n * mean(g * n)),  dw = sum dy * n,  n = x * r, g = dy * w
    SwiGLU    h = silu(gate(x)) * up(x)                        gate, up, h: (..., I); saves g, u
              du = dh * silu(g),  dg = dh * u * s * (1 + g * (1 - s)),  s = sigmoid(g)
    rotary    (B, T, n hd) projections -> (B, n, T, hd) rotated;  dx = dy cos + R^T (dy sin)
    attention softmax(scale q k^T, masked) v -> (B, T, nh hd);  saves q, k, v, out and the
              log-sum-exp per query, and recomputes the probabilities in the backward

Values and gradients equal the `transformers` modules' up to float32 rounding (tested).

`enable(model)` swaps the class of each ``Qwen2RMSNorm`` / ``LlamaRMSNorm``, each ``Qwen2MLP`` /
``LlamaMLP`` with a SiLU activation and each `transformers` 5 ``Qwen2Attention`` /
``LlamaAttention`` for a subclass (so ``isinstance`` and the state dict are unchanged) whose
forward takes the fused path for float32 CPU inputs, plain-tensor weights, no autocast, and
torch on one thread (the kernels are single-threaded); attention also needs the `sdpa` /
`eager` implementation, no sliding window or dropout, a bool or no mask and no cache or a
`DynamicCache`. Otherwise the original forward runs (CUDA, half precision, FSDP2's DTensor
weights, more threads). It does nothing when the kernels are off (``R1LAB_CPU_FUSED=torch``)
or cannot be built (logged by `c_kernels.load`).
"""

from __future__ import annotations

import torch
from torch import nn

from r1lab.engines import c_kernels

NORM_CLASSES = ("Qwen2RMSNorm", "LlamaRMSNorm")  # x * rsqrt(mean x^2 + eps) * w (also kv_decode)
_MLPS = ("Qwen2MLP", "LlamaMLP")
_ATTNS = ("Qwen2Attention", "LlamaAttention")
SILU_ACTIVATIONS = ("SiLU", "SiLUActivation")
_PLAIN = (torch.Tensor, nn.Parameter)


def _fusable(*tensors: torch.Tensor) -> bool:
    """Float32 CPU plain tensors outside autocast, while the training kernels apply
    (`c_kernels.for_training`: torch on one thread)."""
    return (
        all(
            type(t) in _PLAIN and t.dtype is torch.float32 and t.device.type == "cpu"
            for t in tensors
        )
        and tensors[0].numel() > 0
        and not torch.is_autocast_enabled("cpu")
        and c_kernels.for_training() is not None
    )


class _RMSNormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps):
        ck = c_kernels.load()
        x2 = x.reshape(-1, x.shape[-1]).contiguous()
        w = weight.contiguous()
        y = torch.empty_like(x2)
        inv = torch.empty(x2.shape[0], dtype=torch.float32)
        ck.rmsnorm_fwd(x2, w, eps, y, inv)
        ctx.save_for_backward(x2, w, inv)
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, dy):
        x2, w, inv = ctx.saved_tensors
        dy2 = dy.reshape(-1, x2.shape[1]).contiguous()
        dx = torch.empty_like(x2)
        dw_acc = torch.zeros(x2.shape[1], dtype=torch.float64)
        c_kernels.load().rmsnorm_bwd(dy2, x2, w, inv, dx, dw_acc)
        dw = dw_acc.to(torch.float32) if ctx.needs_input_grad[1] else None
        return dx.view(dy.shape), dw, None


class _SwiGLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, g, u):
        g, u = g.contiguous(), u.contiguous()
        h = torch.empty_like(g)
        c_kernels.load().swiglu_fwd(g, u, h)
        ctx.save_for_backward(g, u)
        return h

    @staticmethod
    def backward(ctx, dh):
        g, u = ctx.saved_tensors
        dg, du = torch.empty_like(g), torch.empty_like(u)
        c_kernels.load().swiglu_bwd(dh.contiguous(), g, u, dg, du)
        return dg, du


class _RopeFn(torch.autograd.Function):
    """x (B, T, n hd) -> (B, n, T, hd), x cos + rotate_half(x) sin (cos / sin (B or 1, T, hd))."""

    @staticmethod
    def forward(ctx, x, cos, sin, n):
        B, T, W = x.shape
        x = x.contiguous()
        y = torch.empty((B, n, T, W // n), dtype=x.dtype)
        c_kernels.load().rope_fwd(x, cos, sin, y)
        ctx.save_for_backward(cos, sin)
        return y

    @staticmethod
    def backward(ctx, dy):
        cos, sin = ctx.saved_tensors
        B, n, T, hd = dy.shape
        dx = torch.empty((B, T, n * hd), dtype=dy.dtype)
        c_kernels.load().rope_bwd(dy.contiguous(), cos, sin, dx)
        return dx, None, None, None


class _AttnFn(torch.autograd.Function):
    """softmax(scale q k^T, masked) v: q (B, nh, T, hd), k / v (B, nkv, S, hd), mask (B or 1,
    T, S) uint8 -> (B, T, nh hd). Saves q, k, v, the output and each query's log-sum-exp; the
    backward recomputes the probabilities from them (no (T, S) matrix is kept)."""

    @staticmethod
    def forward(ctx, q, k, v, mask, scale):
        B, nh, T, hd = q.shape
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        out = torch.empty((B, T, nh, hd), dtype=q.dtype)
        lse = torch.empty((B, nh, T), dtype=q.dtype)
        c_kernels.load().attn_fwd(q, k, v, mask, scale, out, lse)
        ctx.save_for_backward(q, k, v, mask, out, lse)
        ctx.scale = scale
        return out.view(B, T, nh * hd)

    @staticmethod
    def backward(ctx, dout):
        q, k, v, mask, out, lse = ctx.saved_tensors
        dq, dk, dv = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
        dout = dout.contiguous().view(out.shape)
        c_kernels.load().attn_bwd(q, k, v, mask, ctx.scale, out, dout, lse, dq, dk, dv)
        return dq, dk, dv, None, None


def _key_mask(attention_mask, T: int, S: int) -> torch.Tensor | None:
    """(B or 1, T, S) uint8 from the mask `transformers` hands an attention layer: None is
    causal (query i sees keys up to S - T + i), a bool (b, 1, T, S) mask as it is; None when the
    mask has another form (then the layer keeps its own forward)."""
    if attention_mask is None:
        return torch.ones((T, S), dtype=torch.bool).tril(S - T).to(torch.uint8).unsqueeze(0)
    m = attention_mask
    if m.dtype is not torch.bool or m.dim() != 4 or m.size(1) != 1 or m.shape[-2:] != (T, S):
        return None
    return m[:, 0].to(torch.uint8).contiguous()


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """``weight * (x * rsqrt(mean(x^2) + eps))`` over the last dim, fused (float32 CPU)."""
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return _RMSNormFn.apply(x, weight, eps)
    x2 = x.reshape(-1, x.shape[-1]).contiguous()
    y = torch.empty_like(x2)
    c_kernels.load().rmsnorm_fwd(
        x2, weight.contiguous(), eps, y, torch.empty(x2.shape[0], dtype=torch.float32)
    )
    return y.view(x.shape)


def swiglu(g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``silu(g) * u``, fused (float32 CPU, g and u of one shape)."""
    if torch.is_grad_enabled() and (g.requires_grad or u.requires_grad):
        return _SwiGLUFn.apply(g, u)
    h = torch.empty_like(g, memory_format=torch.contiguous_format)
    c_kernels.load().swiglu_fwd(g.contiguous(), u.contiguous(), h)
    return h


def _norm_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    if _fusable(hidden_states, self.weight):
        return rms_norm(hidden_states, self.weight, self.variance_epsilon)
    return super(type(self), self).forward(hidden_states)


def _mlp_forward(self, x: torch.Tensor) -> torch.Tensor:
    g, u = self.gate_proj(x), self.up_proj(x)
    if g.shape == u.shape and _fusable(g, u):
        return self.down_proj(swiglu(g, u))
    return self.down_proj(self.act_fn(g) * u)


def _attn_forward(self, hidden_states, position_embeddings, attention_mask=None, cache=None, **kw):
    cache = kw.pop("past_key_values", cache)
    cos, sin = position_embeddings
    B, T = hidden_states.shape[:2]
    hd = self.head_dim
    cfg = self.config
    plain = (
        getattr(cfg, "_attn_implementation", None) in ("sdpa", "eager")
        and getattr(self, "sliding_window", None) is None
        and not (self.training and self.attention_dropout > 0)
        and not kw.get("output_attentions")
        and kw.get("softcap") is None
        and cos.dim() == 3
        and cos.shape[1:] == (T, hd)
        and (cache is None or type(cache).__name__ == "DynamicCache")
        and _fusable(hidden_states, cos, sin)
    )
    mask = None
    if plain:
        S = T + (cache.get_seq_length(self.layer_idx) if cache is not None else 0)
        mask = _key_mask(attention_mask, T, S)
    if mask is None:
        return super(type(self), self).forward(
            hidden_states, position_embeddings, attention_mask, cache, **kw
        )
    nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
    cos, sin = cos.contiguous(), sin.contiguous()
    q = _RopeFn.apply(self.q_proj(hidden_states), cos, sin, nh)  # (B, nh, T, hd)
    k = _RopeFn.apply(self.k_proj(hidden_states), cos, sin, nkv)
    v = self.v_proj(hidden_states).view(B, T, nkv, hd).transpose(1, 2)
    if cache is not None:
        k, v = cache.update(k, v, self.layer_idx, kwargs=kw)
    if k.size(2) != mask.size(-1):  # the kernel reads mask rows of k's length
        raise RuntimeError(f"fused attention: {k.size(2)} keys but a mask over {mask.size(-1)}")
    out = _AttnFn.apply(q, k, v, mask, float(self.scaling))
    return self.o_proj(out), None


_ATTN_PARAMS = ["self", "hidden_states", "position_embeddings", "attention_mask", "cache", "kwargs"]


def _attn_swappable(module: nn.Module) -> bool:
    """The `transformers` 5 attention layer this forward mirrors (q/k/v/o projections, rotary
    from position_embeddings, ``cache.update``), with a SiLU-free plain layout."""
    import inspect

    if type(module).__name__ not in _ATTNS:
        return False
    fn = inspect.unwrap(type(module).forward)
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False
    cfg = getattr(module, "config", None)
    return (
        names == _ATTN_PARAMS
        and all(hasattr(module, a) for a in ("q_proj", "k_proj", "v_proj", "o_proj", "head_dim"))
        and cfg is not None
        and cfg.num_attention_heads % cfg.num_key_value_heads == 0
        and not getattr(module, "q_norm", None)  # Qwen3-style q/k norms: not this forward
    )


_SWAPPED: dict[type, type] = {}


def _fused_class(cls: type, forward) -> type:
    """A subclass of ``cls`` with ``forward`` (one per original class)."""
    if cls not in _SWAPPED:
        name = f"Fused{cls.__name__}"
        _SWAPPED[cls] = type(name, (cls,), {"forward": forward, "__module__": __name__})
        globals()[name] = _SWAPPED[cls]  # importable by name (pickle)
    return _SWAPPED[cls]


def enable(model: nn.Module) -> int:
    """Swap the known RMSNorm / SiLU-MLP modules of ``model`` for their fused subclasses.

    Returns the number of modules swapped by this call (0 when the kernels are off).
    """
    if not isinstance(model, nn.Module) or c_kernels.mode() == "torch":
        return 0
    todo = []
    for module in model.modules():
        name = type(module).__name__
        if name in NORM_CLASSES and isinstance(getattr(module, "variance_epsilon", None), float):
            todo.append((module, _norm_forward))
        elif name in _MLPS and type(getattr(module, "act_fn", None)).__name__ in SILU_ACTIVATIONS:
            todo.append((module, _mlp_forward))
        elif _attn_swappable(module):
            todo.append((module, _attn_forward))
    if not todo or c_kernels.load() is None:
        return 0
    for module, forward in todo:
        module.__class__ = _fused_class(type(module), forward)
    return len(todo)
