"""Float32 linear layers on the CPU through oneDNN, where it is faster than PyTorch's default.

PyTorch computes a float32 ``F.linear`` on x86 through MKL's sgemm. MKL chooses its code paths
by CPU vendor: on the project's earlier AMD EPYC box it ran at AVX2 speed although the core has
AVX-512, and oneDNN, which every PyTorch CPU wheel also contains and which picks by instruction
set, ran the tiny models' matmuls 1.6 - 2.3x faster (2048^3 at one thread: 236 vs 108 GFLOP/s).
On other CPUs the two are close or MKL wins (benchmarks/README.md has the figures per CPU),
hence the one-off timing below.

`OneDNNLinear` is ``nn.Linear`` whose forward sends float32 CPU inputs through
``torch.ops.mkldnn._linear_pointwise`` (the op PyTorch's own inductor uses) with a hand-written
backward of two more oneDNN matmuls::

    y  = x W^T + b        x: (M, K), W: (N, K), b: (N,)  ->  y: (M, N)   (leading dims folded)
    dx = dy W             dy: (M, N) @ W: (N, K)          ->  (M, K)
    dW = dy^T x           dy^T: (N, M) @ x: (M, K)        ->  (N, K)
    db = sum_M dy

The op takes its second operand as a strided view but copies a transposed first operand, so dW
is computed as ``(x^T dy)^T`` when K < N: the copied operand is always the narrower of dy^T and
x^T. It is the same IEEE float32 arithmetic with another summation order (differences ~1e-6
relative). Anything else (CUDA, half precision, autocast, DTensor weights of FSDP2, empty
inputs) takes ``F.linear`` unchanged.

`enable(model)` swaps the class of every plain ``nn.Linear`` of ``model`` for `OneDNNLinear`
in place (parameters, state dict, tying and ``isinstance(m, nn.Linear)`` are untouched;
idempotent). `pack_weight` prepacks a frozen weight for a decode loop. The choice is one per
process, by the switch ``R1LAB_CPU`` (`r1lab.engines.cpu.mode`): ``auto`` (default) times both
kernels once on a mid-sized matmul and uses oneDNN only when it is at least `AUTO_MIN_SPEEDUP`
faster on this machine, ``on`` always (where available), ``off`` never. The decision and its
figures are logged once.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
import time

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

AUTO_MIN_SPEEDUP = 1.15


def _op():
    mkldnn = getattr(torch.ops, "mkldnn", None)
    return getattr(mkldnn, "_linear_pointwise", None) if mkldnn is not None else None


def _onednn_mm(x_MK: torch.Tensor, w_NK: torch.Tensor, b_N: torch.Tensor | None) -> torch.Tensor:
    """(M, K) x (N, K)^T + b -> (M, N) by oneDNN; both operands may be transposed views."""
    return torch.ops.mkldnn._linear_pointwise(x_MK, w_NK, b_N, "none", [], "")


def _rows(x: torch.Tensor) -> torch.Tensor:
    """(..., K) -> contiguous (M, K), M = the product of the leading dims."""
    x2 = x.reshape(-1, x.shape[-1])
    return x2 if x2.is_contiguous() else x2.contiguous()


def _folded_mm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """x (..., K) and w (N, K) (plain or packed) -> (..., N), no autograd."""
    return _onednn_mm(_rows(x), w, b).view(*x.shape[:-1], w.size(0))


class _OneDNNLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        x2 = _rows(x)
        w = weight if weight.is_contiguous() else weight.contiguous()
        ctx.save_for_backward(x2, w)
        ctx.has_bias = bias is not None
        return _onednn_mm(x2, w, bias).view(*x.shape[:-1], w.shape[0])

    @staticmethod
    def backward(ctx, grad_y):
        x2, w = ctx.saved_tensors
        g2 = _rows(grad_y)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _onednn_mm(g2, w.t(), None).view(*grad_y.shape[:-1], w.shape[1])
        if ctx.needs_input_grad[1]:
            if x2.shape[1] < g2.shape[1]:  # copy the narrower transposed operand (x^T here)
                grad_w = _onednn_mm(x2.t().contiguous(), g2.t(), None).t().contiguous()
            else:
                grad_w = _onednn_mm(g2.t().contiguous(), x2.t(), None)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g2.sum(0)
        return grad_x, grad_w, grad_b


_PLAIN = (torch.Tensor, nn.Parameter)


def _eligible(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    return (
        x.dtype is torch.float32
        and weight.dtype is torch.float32
        and (bias is None or bias.dtype is torch.float32)
        and x.device.type == "cpu"
        and type(weight) in _PLAIN  # not a DTensor (FSDP2) or another tensor subclass
        and x.numel() > 0
        and not torch.is_autocast_enabled("cpu")
    )


def onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None):
    """``F.linear`` with oneDNN for float32 CPU tensors (see the module docstring); else F.linear."""
    if not _eligible(x, weight, bias):
        return F.linear(x, weight, bias)
    if torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    ):
        return _OneDNNLinearFn.apply(x, weight, bias)
    return _folded_mm(x, weight if weight.is_contiguous() else weight.contiguous(), bias)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None):
    """The process's chosen linear: `onednn_linear` when oneDNN is on, else ``F.linear``.

    ``weight`` may be a `pack_weight` result (inference only: no gradient reaches it).
    """
    if weight.layout == torch._mkldnn:  # packed by pack_weight: oneDNN is on, x float32 CPU
        return _folded_mm(x, weight, bias)
    if x.device.type == "cpu" and use_onednn():
        return onednn_linear(x, weight, bias)
    return F.linear(x, weight, bias)


def pack_weight(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """``weight`` (N, K) reordered once into oneDNN's blocked layout for inputs of about ``rows``
    rows (any row count works), for repeated no-grad `linear` calls: a decode loop multiplies
    the same weights every step, and a packed weight saves oneDNN's per-call reorder (~10 % of a
    (64, 128) x (128, 1024) matmul here). Returns ``weight`` itself where oneDNN is off or the
    weight is not a float32 CPU tensor."""
    if (
        weight.device.type != "cpu"
        or weight.dtype is not torch.float32
        or weight.requires_grad
        or not use_onednn()
    ):
        return weight
    return torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), max(1, rows))


class OneDNNLinear(nn.Linear):
    """``nn.Linear`` computed by `onednn_linear` (float32 CPU); created by `enable`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return onednn_linear(x, self.weight, self.bias)


# Linear layers that compute exactly ``x W^T + b`` (what code that reads their weights may assume).
PLAIN_LINEARS = (nn.Linear, OneDNNLinear)


def _best_s(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _measure() -> tuple[bool, str]:
    """(use oneDNN, why): a numerics check and one timing of both kernels on a (512, 256) x (256, 1024)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 256, generator=gen)
    w = torch.randn(1024, 256, generator=gen) * 0.05
    b = torch.randn(1024, generator=gen)
    ref = F.linear(x, w, b)
    err = ((_onednn_mm(x, w, b) - ref).abs().max() / ref.abs().max()).item()
    if not err < 1e-5:
        return False, f"oneDNN disagrees with F.linear (max relative error {err:.1e})"
    t_torch = _best_s(lambda: F.linear(x, w, b), 5)
    t_onednn = _best_s(lambda: _onednn_mm(x, w, b), 5)
    speedup = t_torch / t_onednn
    verdict = speedup >= AUTO_MIN_SPEEDUP
    return verdict, f"oneDNN {speedup:.2f}x F.linear on a 512x256x1024 matmul"


def _machine_choice() -> tuple[bool, str]:
    """`_measure`'s verdict, taken once per machine, torch version and thread count and kept in
    ``$R1LAB_CACHE/kernels/``: processes that decide at other moments (or under other load) then
    route linears the same way and round the same (a resumed run equals an uninterrupted one)."""
    from r1lab.utils.paths import cache_root

    key = f"linear-{torch.__version__}-{platform.machine()}-{torch.get_num_threads()}t.json"
    path = cache_root() / "kernels" / key
    try:
        saved = json.loads(path.read_text())
        return bool(saved["onednn"]), f"{saved['why']}; decided once for this machine: {path}"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    verdict, why = _measure()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"onednn": verdict, "why": why}))
    os.replace(tmp, path)
    return verdict, why


@functools.cache
def use_onednn() -> bool:
    """Whether this process routes float32 CPU linears through oneDNN (decided once, logged)."""
    from r1lab.engines.cpu import ENV, mode

    chosen = mode()
    if chosen == "off":
        log.info("CPU linear layers: PyTorch's default kernel (%s=off)", ENV)
        return False
    if _op() is None or not torch.backends.mkldnn.is_available():
        log.warning(
            "CPU linear layers: oneDNN is not available in this PyTorch build; using F.linear"
        )
        return False
    try:
        verdict, why = _machine_choice()
    except RuntimeError as exc:  # an op that exists but refuses these tensors
        log.warning("CPU linear layers: oneDNN failed (%s); using F.linear", exc)
        return False
    if chosen == "on" or verdict:
        log.info("CPU linear layers: oneDNN (%s, %s=%s)", why, ENV, chosen)
        return True
    log.info("CPU linear layers: PyTorch's default kernel (%s, below %.2fx)", why, AUTO_MIN_SPEEDUP)
    return False


def enable(model: nn.Module) -> int:
    """Make every plain ``nn.Linear`` of ``model`` an `OneDNNLinear` when oneDNN is on.

    Returns the number of layers swapped by this call (0 when the process keeps PyTorch's kernel).
    """
    if not isinstance(model, nn.Module) or not use_onednn():
        return 0  # e.g. a LoRA reference wrapper: the policy it wraps is swapped already
    swapped = 0
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = OneDNNLinear
            swapped += 1
    return swapped
