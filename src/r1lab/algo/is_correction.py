"""Importance-sampling correction for the sampler/trainer mismatch, and its metrics.

A fast rollout engine (vLLM: other kernels, bf16 accumulation, fused sampling) does not compute
exactly the log-probs the trainer computes for the same weights and tokens, so the "on-policy"
rollouts are slightly off-policy. Truncated importance sampling (TIS; Yao et al. 2025, "Your
efficient RL framework secretly brings you off-policy RL training") reweights each token of the
policy-gradient term by the ratio between the trainer's log-prob under the rollout weights
(``trainer_old_logp``, recomputed by the learner before the update) and the sampler's, capped:

    w_it = min(exp(trainer_old_logp_it - sampler_logp_it), C)

The PPO ratio then uses ``trainer_old_logp`` as its denominator and ``w`` multiplies the
per-token policy loss (`grpo_loss.policy_objective(..., token_weight_BT=w)`); ``w`` carries no
gradient. The mismatch metrics say how far apart the two engines are.

Not here: where the two log-prob tensors come from (engines/) and the policy loss (losses.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from r1lab.algo._checks import AlgoError, check_shape, float_mask
from r1lab.registry import Registry

ISCorrectionFn = Callable[..., torch.Tensor]

IS_CORRECTIONS: Registry[ISCorrectionFn] = Registry("importance-sampling correction")

LOG_RATIO_CLAMP = 20.0


def _check(trainer_old_logp_BT, sampler_logp_BT, mask_BT) -> None:
    check_shape("trainer_old_logp_BT", trainer_old_logp_BT, (None, None))
    shape = tuple(trainer_old_logp_BT.shape)
    check_shape("sampler_logp_BT", sampler_logp_BT, shape)
    check_shape("mask_BT", mask_BT, shape)


@IS_CORRECTIONS.register("tis")
def truncated_is_weights(
    trainer_old_logp_BT: torch.Tensor,
    sampler_logp_BT: torch.Tensor,
    mask_BT: torch.Tensor,
    *,
    cap: float,
) -> torch.Tensor:
    """Token-level TIS weights ``min(exp(trainer_old_logp - sampler_logp), cap)``, 0 on padding.

    The log-ratio is clamped to [-20, 20] before ``exp`` (as for the PPO ratio). Detached.

    Shapes:
        trainer_old_logp_BT, sampler_logp_BT, mask_BT: (B, T); returns weight_BT: (B, T)
    """
    _check(trainer_old_logp_BT, sampler_logp_BT, mask_BT)
    if not cap > 0:
        raise AlgoError(f"TIS cap must be > 0, got {cap!r}")
    with torch.no_grad():
        m = float_mask(mask_BT, trainer_old_logp_BT.dtype)
        log_ratio = (trainer_old_logp_BT - sampler_logp_BT).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
        return torch.exp(log_ratio).clamp(max=cap) * m


def mismatch_metrics(
    trainer_old_logp_BT: torch.Tensor,
    sampler_logp_BT: torch.Tensor,
    mask_BT: torch.Tensor,
    weight_BT: torch.Tensor | None = None,
    *,
    cap: float | None = None,
) -> dict[str, torch.Tensor]:
    """Detached scalars over the valid tokens comparing sampler and trainer log-probs.

    With ``d = trainer_old_logp - sampler_logp`` (tokens drawn from the sampler):
    ``mismatch/abs_logp_diff`` = mean |d|, ``mismatch/abs_logp_diff_max`` = max |d|,
    ``mismatch/k3`` = mean of ``e^d - d - 1`` (Schulman's k3 estimate of
    KL(sampler || trainer), >= 0). Given TIS weights (and their ``cap``):
    ``mismatch/is_weight_mean`` and ``mismatch/is_capped_frac`` (share of tokens whose raw ratio
    exceeded the cap). All 0 when no token is valid.

    Shapes:
        trainer_old_logp_BT, sampler_logp_BT, mask_BT, weight_BT: (B, T); returns dict of ()
    """
    _check(trainer_old_logp_BT, sampler_logp_BT, mask_BT)
    with torch.no_grad():
        m = float_mask(mask_BT, trainer_old_logp_BT.dtype)
        n = m.sum().clamp(min=1)
        d = (trainer_old_logp_BT - sampler_logp_BT).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP) * m
        out = {
            "mismatch/abs_logp_diff": d.abs().sum() / n,
            "mismatch/abs_logp_diff_max": d.abs().max() if d.numel() else d.new_zeros(()),
            "mismatch/k3": ((torch.exp(d) - d - 1.0) * m).sum() / n,
        }
        if weight_BT is not None:
            check_shape("weight_BT", weight_BT, tuple(m.shape))
            out["mismatch/is_weight_mean"] = (weight_BT * m).sum() / n
            if cap is not None:
                capped = (torch.exp(d) > cap).to(m.dtype) * m
                out["mismatch/is_capped_frac"] = capped.sum() / n
        return out
