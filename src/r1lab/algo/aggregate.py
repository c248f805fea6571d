"""Loss aggregation: how a per-token loss matrix becomes one scalar (algorithms.md section 1.1).

The aggregation is a choice independent of the loss formula and of the advantage estimator:

| name                      | scalar                                         | used by                 |
|---------------------------|------------------------------------------------|-------------------------|
| `token_mean`              | sum_i sum_t l_it / num_tokens                  | DAPO, verl default      |
| `seq_mean_token_mean`     | (1/num_seqs) sum_i (1/abs(o_i)) sum_t l_it     | DeepSeekMath GRPO Eq. 3 |
| `seq_mean_token_sum`      | (1/num_seqs) sum_i sum_t l_it                  | REINFORCE-style         |
| `seq_mean_token_sum_norm` | sum_i sum_t l_it / (num_seqs * const_len)      | Dr. GRPO (TRL, oat)     |

Global normalizers: ``num_seqs`` and ``num_tokens`` are the counts over the WHOLE optimizer batch
(all gradient-accumulation micro-batches and all ranks); the learner computes them (see
`batch_normalizers`) and passes them in. Every mode is then a sum of per-row terms divided by a
batch constant, so summing the aggregated losses of the micro-batches gives exactly the loss of
the full batch. ``None`` means "this call's batch is the whole batch" and uses its own mask.

Sequence count convention: a row with no valid token (e.g. zeroed by `filters.overlong_mask`)
contributes nothing and is not counted in the default ``num_seqs`` (verl does the same). An
empty batch aggregates to 0 (no gradient) rather than 0/0.

Not here: the loss formulas themselves (`losses.py`) and the KL term (`kl.py`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from r1lab.algo._checks import AlgoError, check_positive, check_shape, float_mask
from r1lab.registry import Registry

AggregationFn = Callable[..., torch.Tensor]

AGGREGATIONS: Registry[AggregationFn] = Registry("loss aggregation")


def batch_normalizers(mask_BT: torch.Tensor) -> dict[str, float]:
    """The global normalizers of a full batch: ``{"num_seqs": ..., "num_tokens": ...}``.

    ``num_seqs`` counts rows with at least one valid token, ``num_tokens`` the valid tokens, each
    at least 1. Compute this once over the whole optimizer batch (sum the counts over ranks) and
    pass both to every micro-batch's aggregation.

    Shapes:
        mask_BT: (B, T) 0/1 response mask
    """
    check_shape("mask_BT", mask_BT, (None, None))
    m = mask_BT.detach().float()
    return {
        "num_seqs": max(1.0, float((m.sum(-1) > 0).sum())),
        "num_tokens": max(1.0, float(m.sum())),
    }


def _prepare(loss_BT: torch.Tensor, mask_BT: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    check_shape("loss_BT", loss_BT, (None, None))
    check_shape("mask_BT", mask_BT, tuple(loss_BT.shape))
    m = float_mask(mask_BT, loss_BT.dtype)
    # where(), not loss * m: a non-finite value on a padding position must not leak into the sum
    return torch.where(m > 0, loss_BT, torch.zeros_like(loss_BT)) * m, m


def _num_seqs(m: torch.Tensor, num_seqs: float | None) -> float | torch.Tensor:
    if num_seqs is not None:
        check_positive("num_seqs", num_seqs)
        return num_seqs
    return (m.sum(-1) > 0).sum().clamp(min=1).to(m.dtype)


@AGGREGATIONS.register("token_mean")
def token_mean(
    loss_BT: torch.Tensor,
    mask_BT: torch.Tensor,
    *,
    num_seqs: float | None = None,
    num_tokens: float | None = None,
    const_len: float | None = None,
) -> torch.Tensor:
    """Every valid token weighs the same: ``sum(l * m) / num_tokens`` (DAPO token-level loss).

    ``num_seqs`` and ``const_len`` are accepted for a uniform call and not used.

    Shapes:
        loss_BT: (B, T) per-token loss; mask_BT: (B, T) 0/1; returns a scalar ()
    """
    lm, m = _prepare(loss_BT, mask_BT)
    if num_tokens is not None:
        check_positive("num_tokens", num_tokens)
        return lm.sum() / num_tokens
    return lm.sum() / m.sum().clamp(min=1)


@AGGREGATIONS.register("seq_mean_token_mean")
def seq_mean_token_mean(
    loss_BT: torch.Tensor,
    mask_BT: torch.Tensor,
    *,
    num_seqs: float | None = None,
    num_tokens: float | None = None,
    const_len: float | None = None,
) -> torch.Tensor:
    """Mean over sequences of each sequence's token mean (DeepSeekMath GRPO Eq. 3).

    ``sum_i (sum_t l_it / abs(o_i)) / num_seqs``; ``abs(o_i)`` is always the row's own length.
    ``num_tokens`` and ``const_len`` are accepted for a uniform call and not used.

    Shapes:
        loss_BT: (B, T) per-token loss; mask_BT: (B, T) 0/1; returns a scalar ()
    """
    lm, m = _prepare(loss_BT, mask_BT)
    per_seq_B = lm.sum(-1) / m.sum(-1).clamp(min=1)
    return per_seq_B.sum() / _num_seqs(m, num_seqs)


@AGGREGATIONS.register("seq_mean_token_sum")
def seq_mean_token_sum(
    loss_BT: torch.Tensor,
    mask_BT: torch.Tensor,
    *,
    num_seqs: float | None = None,
    num_tokens: float | None = None,
    const_len: float | None = None,
) -> torch.Tensor:
    """Mean over sequences of each sequence's token sum: ``sum(l * m) / num_seqs``.

    ``num_tokens`` and ``const_len`` are accepted for a uniform call and not used.

    Shapes:
        loss_BT: (B, T) per-token loss; mask_BT: (B, T) 0/1; returns a scalar ()
    """
    lm, m = _prepare(loss_BT, mask_BT)
    return lm.sum() / _num_seqs(m, num_seqs)


@AGGREGATIONS.register("seq_mean_token_sum_norm")
def seq_mean_token_sum_norm(
    loss_BT: torch.Tensor,
    mask_BT: torch.Tensor,
    *,
    num_seqs: float | None = None,
    num_tokens: float | None = None,
    const_len: float | None = None,
) -> torch.Tensor:
    """Dr. GRPO: token sums divided by a constant length, ``sum(l * m) / (num_seqs * const_len)``.

    ``const_len`` (the maximum generation length, Dr. GRPO's ``L``) is required. This is the
    TRL ``dr_grpo`` / oat form; verl's variant omits ``1/num_seqs`` (a constant factor).

    Shapes:
        loss_BT: (B, T) per-token loss; mask_BT: (B, T) 0/1; returns a scalar ()
    """
    if const_len is None:
        raise AlgoError(
            "seq_mean_token_sum_norm needs const_len (Dr. GRPO's constant L, usually the "
            "maximum number of generated tokens)"
        )
    check_positive("const_len", const_len)
    lm, m = _prepare(loss_BT, mask_BT)
    return lm.sum() / (_num_seqs(m, num_seqs) * const_len)


def masked_mean(x_BT: torch.Tensor, mask_BT: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over valid positions (0 when there are none); for metrics.

    Shapes:
        x_BT: (B, T); mask_BT: (B, T) 0/1; returns a scalar ()
    """
    return token_mean(x_BT, mask_BT)
