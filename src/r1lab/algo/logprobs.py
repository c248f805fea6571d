"""Token log-probs and entropies from logits or from hidden states, without a (B, T, V) log_softmax.

* `token_logprobs` / `entropy_from_logits` work on given logits: ``logp = z_target - logsumexp(z)``
  with ``z = logits / temperature``; no full log-softmax tensor is built. Low-precision logits
  (bf16/fp16) are upcast to float32 one row at a time.
* `logprobs_from_hidden` starts from the last hidden states and the LM-head weight and processes
  ``chunk_size`` tokens at a time under activation checkpointing: at most one chunk of logits
  (chunk_size x V) exists at once, in the forward AND in the backward pass (each chunk's logits
  are recomputed when its gradient is needed). Gradients flow to the hidden states, the weight
  and the bias.

Outputs are float32 (float64 if the inputs are float64). Targets must be valid token ids
everywhere, padding included (use any id there and mask the result).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from r1lab.algo._checks import AlgoError, check_positive, check_shape


def _out_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _check_targets(targets: torch.Tensor, V: int) -> None:
    if targets.dtype not in (torch.int64, torch.int32):
        raise AlgoError(f"targets must be int64 token ids, got dtype {targets.dtype}")
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= V):
        raise AlgoError(
            f"targets must be token ids in [0, {V}); got range "
            f"[{int(targets.min())}, {int(targets.max())}] (put a valid id on padding and mask it)"
        )


def _logp_rows(z_NV: torch.Tensor, targets_N: torch.Tensor) -> torch.Tensor:
    """``z_target - logsumexp(z)`` for already scaled float logits."""
    picked = z_NV.gather(-1, targets_N.long().unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(z_NV, dim=-1)


def _entropy_rows(z_NV: torch.Tensor) -> torch.Tensor:
    """``H = logsumexp(z) - sum_v softmax(z)_v z_v`` for already scaled float logits."""
    return torch.logsumexp(z_NV, dim=-1) - (torch.softmax(z_NV, dim=-1) * z_NV).sum(-1)


def _scaled(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    z = logits.to(_out_dtype(logits))
    return z if temperature == 1.0 else z / temperature


def token_logprobs(
    logits_BTV: torch.Tensor, targets_BT: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """``log softmax(logits / temperature)[target]`` per position, differentiable.

    Shapes:
        logits_BTV: (B, T, V); targets_BT: (B, T) int64; returns logp_BT: (B, T) float32
    """
    check_shape("logits_BTV", logits_BTV, (None, None, None))
    check_shape("targets_BT", targets_BT, tuple(logits_BTV.shape[:2]))
    check_positive("temperature", temperature)
    _check_targets(targets_BT, logits_BTV.shape[-1])
    if logits_BTV.dtype in (torch.float32, torch.float64):
        return _logp_rows(_scaled(logits_BTV, temperature), targets_BT)
    rows = [
        _logp_rows(_scaled(logits_BTV[b], temperature), targets_BT[b])
        for b in range(logits_BTV.shape[0])
    ]
    return torch.stack(rows) if rows else logits_BTV.new_zeros(targets_BT.shape).float()


def entropy_from_logits(logits_BTV: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Entropy of ``softmax(logits / temperature)`` per position, differentiable.

    Shapes:
        logits_BTV: (B, T, V); returns ent_BT: (B, T) float32
    """
    check_shape("logits_BTV", logits_BTV, (None, None, None))
    check_positive("temperature", temperature)
    if logits_BTV.dtype in (torch.float32, torch.float64):
        return _entropy_rows(_scaled(logits_BTV, temperature))
    rows = [_entropy_rows(_scaled(row, temperature)) for row in logits_BTV]
    return torch.stack(rows) if rows else logits_BTV.new_zeros(logits_BTV.shape[:2]).float()


def _chunk_stats(
    hidden_NH: torch.Tensor,
    weight_VH: torch.Tensor,
    bias_V: torch.Tensor | None,
    targets_N: torch.Tensor,
    temperature: float,
    with_entropy: bool,
) -> torch.Tensor:
    """(2, N) [logp; entropy] or (1, N) [logp] for one chunk of tokens."""
    z = _scaled(F.linear(hidden_NH, weight_VH, bias_V), temperature)
    logp = _logp_rows(z, targets_N)
    if not with_entropy:
        return logp.unsqueeze(0)
    return torch.stack([logp, _entropy_rows(z)])


def logprobs_from_hidden(
    hidden_BTH: torch.Tensor,
    lm_head_weight_VH: torch.Tensor,
    targets_BT: torch.Tensor,
    *,
    temperature: float = 1.0,
    chunk_size: int = 512,
    bias_V: torch.Tensor | None = None,
    with_entropy: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Token log-probs (and entropies) of ``hidden @ W.T + b``, ``chunk_size`` tokens at a time.

    Equal to ``token_logprobs(F.linear(hidden, W, b), targets, temperature)`` in value and
    gradient, but peak memory holds one chunk of logits (``chunk_size x V``) instead of
    ``B x T x V``, in forward and backward (activation checkpointing recomputes a chunk's logits
    during backward). Returns ``logp_BT`` or ``(logp_BT, ent_BT)`` with ``with_entropy=True``.

    Shapes:
        hidden_BTH: (B, T, H); lm_head_weight_VH: (V, H); targets_BT: (B, T) int64;
        bias_V: (V,) or None; returns logp_BT (, ent_BT): (B, T) float32
    """
    check_shape("hidden_BTH", hidden_BTH, (None, None, None))
    B, T, H = hidden_BTH.shape
    check_shape("lm_head_weight_VH", lm_head_weight_VH, (None, H))
    V = lm_head_weight_VH.shape[0]
    check_shape("targets_BT", targets_BT, (B, T))
    if bias_V is not None:
        check_shape("bias_V", bias_V, (V,))
    check_positive("temperature", temperature)
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise AlgoError(f"chunk_size must be a positive int, got {chunk_size!r}")
    _check_targets(targets_BT, V)

    hidden_NH = hidden_BTH.reshape(B * T, H)
    targets_N = targets_BT.reshape(B * T)
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (hidden_BTH, lm_head_weight_VH, bias_V)
    )
    parts = []
    for s in range(0, B * T, chunk_size):
        args = (
            hidden_NH[s : s + chunk_size],
            lm_head_weight_VH,
            bias_V,
            targets_N[s : s + chunk_size],
            temperature,
            with_entropy,
        )
        if needs_grad:
            parts.append(checkpoint(_chunk_stats, *args, use_reentrant=False))
        else:
            parts.append(_chunk_stats(*args))
    rows = 2 if with_entropy else 1
    stats = torch.cat(parts, dim=1) if parts else hidden_BTH.new_zeros((rows, 0)).float()
    logp_BT = stats[0].reshape(B, T)
    if not with_entropy:
        return logp_BT
    return logp_BT, stats[1].reshape(B, T)
