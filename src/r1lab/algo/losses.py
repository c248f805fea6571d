"""Policy-gradient loss formulas, per token (algorithms.md sections 1, 3, 5, 8).

Call: ``fn(logp_BT, old_logp_BT, adv_BT, mask_BT, *, eps_low, eps_high, **params)
-> (loss_BT, metrics)``. ``loss_BT`` is the per-token loss (to be MINIMISED, 0 on padding) that an
aggregation from `aggregate.py` turns into a scalar; ``metrics`` are detached scalars over the
valid tokens: ``clip_frac``, ``ratio_mean``, ``ratio_min``, ``ratio_max`` (0 when no token is
valid).

* `ppo_clip`: ``-min(rho A, clip(rho, 1-eps_low, 1+eps_high) A)`` with ``rho = exp(logp -
  old_logp)``; the log-ratio is clamped to [-20, 20] before ``exp`` (verl, OpenRLHF). Symmetric
  PPO/GRPO when ``eps_low == eps_high``, DAPO clip-higher otherwise. Optional dual clip.
* `gspo`: the sequence-level length-normalized ratio of GSPO (Zheng et al., arXiv 2507.18071).

Not here: the KL term and the aggregation (`grpo_loss.policy_objective` composes them).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from r1lab.algo._checks import AlgoError, check_shape, float_mask
from r1lab.registry import Registry

PolicyLossFn = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]

POLICY_LOSSES: Registry[PolicyLossFn] = Registry("policy loss")

LOG_RATIO_CLAMP = 20.0


def _check(logp_BT, old_logp_BT, adv_BT, mask_BT, eps_low: float, eps_high: float) -> None:
    check_shape("logp_BT", logp_BT, (None, None))
    shape = tuple(logp_BT.shape)
    check_shape("old_logp_BT", old_logp_BT, shape)
    check_shape("adv_BT", adv_BT, shape)
    check_shape("mask_BT", mask_BT, shape)
    if not 0.0 <= eps_low < 1.0:
        raise AlgoError(f"eps_low must be in [0, 1), got {eps_low!r}")
    if not eps_high >= 0.0:
        raise AlgoError(f"eps_high must be >= 0, got {eps_high!r}")


def _clipped_surrogate(
    ratio_BT: torch.Tensor,
    adv_BT: torch.Tensor,
    valid_BT: torch.Tensor,
    eps_low: float,
    eps_high: float,
    clip_ratio_c: float | None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-token PPO-clip loss for given ratios, plus clip metrics."""
    unclipped = -adv_BT * ratio_BT
    clipped = -adv_BT * ratio_BT.clamp(1.0 - eps_low, 1.0 + eps_high)
    loss_BT = torch.maximum(unclipped, clipped)
    m = valid_BT.to(ratio_BT.dtype)
    n = m.sum().clamp(min=1)
    with torch.no_grad():
        # section 1: the clip is active iff (A > 0, rho > 1+eps_high) or (A < 0, rho < 1-eps_low)
        active = ((adv_BT > 0) & (ratio_BT > 1.0 + eps_high)) | (
            (adv_BT < 0) & (ratio_BT < 1.0 - eps_low)
        )
        r = ratio_BT.detach()
        metrics = {
            "clip_frac": (active.to(m.dtype) * m).sum() / n,
            "ratio_mean": (r * m).sum() / n,
            "ratio_min": torch.where(valid_BT, r, torch.full_like(r, torch.inf)).min(),
            "ratio_max": torch.where(valid_BT, r, torch.full_like(r, -torch.inf)).max(),
        }
        if not bool(valid_BT.any()):
            metrics["ratio_min"] = metrics["ratio_max"] = torch.zeros((), dtype=m.dtype)
    if clip_ratio_c is not None:
        if not clip_ratio_c > 1.0:
            raise AlgoError(f"clip_ratio_c (dual clip) must be > 1, got {clip_ratio_c!r}")
        # dual clip (verl clip_ratio_c): for A < 0 the loss is capped at -c * A
        capped = torch.minimum(loss_BT, -adv_BT * clip_ratio_c)
        loss_BT = torch.where(adv_BT < 0, capped, loss_BT)
        with torch.no_grad():
            dual = (adv_BT < 0) & (ratio_BT > clip_ratio_c)
            metrics["dual_clip_frac"] = (dual.to(m.dtype) * m).sum() / n
    loss_BT = torch.where(valid_BT, loss_BT, torch.zeros_like(loss_BT))
    return loss_BT, metrics


@POLICY_LOSSES.register("ppo_clip")
def ppo_clip(
    logp_BT: torch.Tensor,
    old_logp_BT: torch.Tensor,
    adv_BT: torch.Tensor,
    mask_BT: torch.Tensor,
    *,
    eps_low: float,
    eps_high: float,
    clip_ratio_c: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Token-level PPO clipped surrogate, negated: ``-min(rho A, clip(rho) A)``.

    ``rho = exp(clamp(logp - old_logp, -20, 20))``; bounds ``[1 - eps_low, 1 + eps_high]``.
    ``clip_ratio_c`` (> 1, verl default 3.0 when enabled; ``None`` = off) is the dual clip: for
    ``A < 0`` the loss is ``min(max(-rho A, -clip(rho) A), -c A)``. Gradient w.r.t. ``logp`` is
    ``-rho A`` where no clip is active, else 0. Extra metric with dual clip: ``dual_clip_frac``.

    Shapes:
        logp_BT, old_logp_BT, adv_BT, mask_BT: (B, T); returns loss_BT: (B, T), metrics of ()
    """
    _check(logp_BT, old_logp_BT, adv_BT, mask_BT, eps_low, eps_high)
    valid = float_mask(mask_BT, logp_BT.dtype) > 0
    log_ratio = (logp_BT - old_logp_BT).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    log_ratio = torch.where(valid, log_ratio, torch.zeros_like(log_ratio))
    return _clipped_surrogate(torch.exp(log_ratio), adv_BT, valid, eps_low, eps_high, clip_ratio_c)


@POLICY_LOSSES.register("gspo")
def gspo(
    logp_BT: torch.Tensor,
    old_logp_BT: torch.Tensor,
    adv_BT: torch.Tensor,
    mask_BT: torch.Tensor,
    *,
    eps_low: float,
    eps_high: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """GSPO with the sequence ratio ``s_i = exp(mean_t (logp - old_logp))`` (GSPO-token form).

    Each token gets the ratio ``s_it = sg[s_i] * exp(logp_t - sg[logp_t])``: its VALUE is the
    sequence ratio ``s_i`` at every valid token, its gradient ``s_i * grad logp_t``. The PPO clip
    is then applied per token with these ratios (paper bounds: eps_low 3e-4, eps_high 4e-4).

    Mapping to the sequence loss: with a per-sequence advantage (constant over the row), every
    valid token of row ``i`` carries the same value ``l_i = -min(s_i A_i, clip(s_i) A_i)``, so the
    ``seq_mean_token_mean`` aggregation gives exactly ``(1/G) sum_i l_i``, GSPO's objective, and
    its gradient ``(1/G) sum_i (1/abs(o_i)) sum_t grad l_it`` equals the gradient of the sequence
    form. That is why `policy_objective` requires ``seq_mean_token_mean`` with gspo. The mean
    log-ratio is clamped to [-20, 20] before ``exp``. ``clip_frac`` counts valid tokens, i.e. it
    is the length-weighted fraction of clipped sequences.

    Shapes:
        logp_BT, old_logp_BT, adv_BT, mask_BT: (B, T); returns loss_BT: (B, T), metrics of ()
    """
    _check(logp_BT, old_logp_BT, adv_BT, mask_BT, eps_low, eps_high)
    m = float_mask(mask_BT, logp_BT.dtype)
    valid = m > 0
    diff = torch.where(valid, logp_BT - old_logp_BT, torch.zeros_like(logp_BT))
    seq_log_ratio_B = diff.sum(-1) / m.sum(-1).clamp(min=1)
    tok_log_ratio = seq_log_ratio_B.detach().unsqueeze(-1) + logp_BT - logp_BT.detach()
    tok_log_ratio = tok_log_ratio.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    tok_log_ratio = torch.where(valid, tok_log_ratio, torch.zeros_like(tok_log_ratio))
    return _clipped_surrogate(torch.exp(tok_log_ratio), adv_BT, valid, eps_low, eps_high, None)
