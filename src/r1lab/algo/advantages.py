"""Advantage estimators of the GRPO family (algorithms.md sections 3, 4, 6, 7).

Uniform call: ``fn(scores_B, mask_BT, *, group_size, **params) -> adv_BT``. ``scores_B`` holds one
outcome reward per sequence; the B rows are ``num_prompts`` consecutive groups of ``group_size``
samples of the same prompt. Outcome-only estimators compute one value per sequence and broadcast
it over the sequence's valid tokens; padding gets 0.

| name                    | per-sequence / per-token advantage                                   |
|-------------------------|----------------------------------------------------------------------|
| `grpo`                  | (r - mean_g) / (std_g + eps), Bessel (n-1) std, eps 1e-6 (verl)       |
| `dr_grpo`               | r - mean_g (Dr. GRPO: no std division)                              |
| `rloo`                  | r - mean of the other G-1 rewards = G/(G-1) (r - mean_g)            |
| `reinforce_pp`          | KL-shaped token rewards, return-to-go, global whitening             |
| `reinforce_pp_baseline` | as `reinforce_pp` with the outcome reward centred by its group mean |

Every estimator accepts ``eps`` so that one call site serves all of them; `dr_grpo` and `rloo`
divide by nothing and do not use it.

Not here: the KL estimators themselves (`kl.py`); GAE / critics (no critic in this package).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from r1lab.algo._checks import (
    AlgoError,
    call_with_params,
    check_group,
    check_shape,
    float_dtype,
    float_mask,
)
from r1lab.registry import Registry

AdvantageFn = Callable[..., torch.Tensor]

ADVANTAGES: Registry[AdvantageFn] = Registry("advantage estimator")


def _check(scores_B: torch.Tensor, mask_BT: torch.Tensor, group_size: int) -> int:
    check_shape("scores_B", scores_B, (None,))
    check_shape("mask_BT", mask_BT, (scores_B.shape[0], None))
    return check_group(scores_B.shape[0], group_size)


def _broadcast(adv_B: torch.Tensor, mask_BT: torch.Tensor) -> torch.Tensor:
    return adv_B.unsqueeze(-1) * float_mask(mask_BT, adv_B.dtype)


def _groups(scores_B: torch.Tensor, group_size: int) -> torch.Tensor:
    return scores_B.to(float_dtype(scores_B)).reshape(-1, group_size)


@ADVANTAGES.register("grpo")
def grpo(
    scores_B: torch.Tensor, mask_BT: torch.Tensor, *, group_size: int, eps: float = 1e-6
) -> torch.Tensor:
    """GRPO outcome advantage ``(r_i - mean(r)) / (std(r) + eps)`` within each group.

    ``std`` is the Bessel-corrected (n-1) sample std, as every checked implementation uses.
    A group of identical rewards gives 0. A group of size 1 has no std: its advantage is the raw
    reward (verl uses mean 0 and std 1 there, i.e. ``r / (1 + eps)``).

    Shapes:
        scores_B: (B,) with B = num_prompts * G; mask_BT: (B, T); returns adv_BT: (B, T)
    """
    _check(scores_B, mask_BT, group_size)
    r_PG = _groups(scores_B, group_size)
    if group_size == 1:
        return _broadcast(r_PG.reshape(-1), mask_BT)
    adv_PG = (r_PG - r_PG.mean(-1, keepdim=True)) / (r_PG.std(-1, keepdim=True) + eps)
    return _broadcast(adv_PG.reshape(-1), mask_BT)


@ADVANTAGES.register("dr_grpo")
def dr_grpo(
    scores_B: torch.Tensor, mask_BT: torch.Tensor, *, group_size: int, eps: float | None = None
) -> torch.Tensor:
    """Dr. GRPO advantage ``r_i - mean(r)`` within each group (no std normalization).

    A group of size 1 has baseline 0 (raw reward), as in verl. ``eps`` is not used.

    Shapes:
        scores_B: (B,) with B = num_prompts * G; mask_BT: (B, T); returns adv_BT: (B, T)
    """
    _check(scores_B, mask_BT, group_size)
    r_PG = _groups(scores_B, group_size)
    if group_size == 1:
        return _broadcast(r_PG.reshape(-1), mask_BT)
    return _broadcast((r_PG - r_PG.mean(-1, keepdim=True)).reshape(-1), mask_BT)


@ADVANTAGES.register("rloo")
def rloo(
    scores_B: torch.Tensor, mask_BT: torch.Tensor, *, group_size: int, eps: float | None = None
) -> torch.Tensor:
    """REINFORCE leave-one-out: ``r_i - mean_{j != i} r_j = G/(G-1) * (r_i - mean(r))``.

    Needs ``group_size >= 2`` (the leave-one-out baseline of a lone sample is undefined).
    ``eps`` is not used.

    Shapes:
        scores_B: (B,) with B = num_prompts * G; mask_BT: (B, T); returns adv_BT: (B, T)
    """
    _check(scores_B, mask_BT, group_size)
    if group_size < 2:
        raise AlgoError("rloo needs group_size >= 2 (the leave-one-out baseline needs G-1 >= 1)")
    r_PG = _groups(scores_B, group_size)
    others_mean = (r_PG.sum(-1, keepdim=True) - r_PG) / (group_size - 1)
    return _broadcast((r_PG - others_mean).reshape(-1), mask_BT)


def last_token_index(mask_BT: torch.Tensor) -> torch.Tensor:
    """Index of each row's last valid token (0 for a row with none).

    Shapes:
        mask_BT: (B, T); returns (B,) int64
    """
    check_shape("mask_BT", mask_BT, (None, None))
    pos_T = torch.arange(mask_BT.shape[1], device=mask_BT.device)
    return torch.where(mask_BT > 0, pos_T, torch.zeros_like(pos_T)).argmax(-1)


def returns_to_go(rewards_BT: torch.Tensor, mask_BT: torch.Tensor, gamma: float = 1.0):
    """``G_t = sum_{s >= t} gamma^(s-t) r_s`` over valid tokens (padding rewards count as 0).

    Shapes:
        rewards_BT, mask_BT: (B, T); returns (B, T), 0 on padding
    """
    check_shape("rewards_BT", rewards_BT, (None, None))
    check_shape("mask_BT", mask_BT, tuple(rewards_BT.shape))
    m = float_mask(mask_BT, rewards_BT.dtype)
    r = rewards_BT * m
    if gamma == 1.0:
        out = r.flip(-1).cumsum(-1).flip(-1)
    else:
        out = torch.zeros_like(r)
        running = torch.zeros_like(r[:, 0])
        for t in range(r.shape[1] - 1, -1, -1):
            running = r[:, t] + gamma * running
            out[:, t] = running
    return out * m


def masked_whiten(
    x_BT: torch.Tensor, mask_BT: torch.Tensor, *, unbiased: bool = False, eps: float = 1e-8
) -> torch.Tensor:
    """``(x - mean) / std`` over all valid positions of the batch; padding stays 0.

    Biased variance (OpenRLHF): ``std = sqrt(max(var, eps))``; unbiased (verl ``masked_whiten``):
    ``std = sqrt(var_{n-1} + eps)``.

    Shapes:
        x_BT, mask_BT: (B, T); returns (B, T)
    """
    check_shape("x_BT", x_BT, (None, None))
    check_shape("mask_BT", mask_BT, tuple(x_BT.shape))
    m = float_mask(mask_BT, x_BT.dtype)
    n = m.sum()
    if n == 0:
        return torch.zeros_like(x_BT)
    mean = (x_BT * m).sum() / n
    sq = ((x_BT - mean).square() * m).sum()
    if unbiased:
        if n < 2:
            raise AlgoError("unbiased whitening needs at least 2 valid tokens in the batch")
        std = (sq / (n - 1) + eps).sqrt()
    else:
        std = (sq / n).clamp(min=eps).sqrt()
    return (x_BT - mean) / std * m


def _reinforce(
    outcome_B: torch.Tensor,
    mask_BT: torch.Tensor,
    kl_BT: torch.Tensor | None,
    beta: float,
    gamma: float,
    unbiased: bool,
    eps: float,
) -> torch.Tensor:
    m = float_mask(mask_BT, outcome_B.dtype)
    rewards_BT = torch.zeros_like(m)
    rewards_BT.scatter_(1, last_token_index(mask_BT).unsqueeze(-1), outcome_B.unsqueeze(-1))
    if beta != 0.0:
        if kl_BT is None:
            raise AlgoError("beta != 0 needs kl_BT, the per-token KL used for reward shaping")
        check_shape("kl_BT", kl_BT, tuple(mask_BT.shape))
        rewards_BT = rewards_BT - beta * kl_BT.detach().to(m.dtype)
    return masked_whiten(returns_to_go(rewards_BT * m, m, gamma), m, unbiased=unbiased, eps=eps)


@ADVANTAGES.register("reinforce_pp")
def reinforce_pp(
    scores_B: torch.Tensor,
    mask_BT: torch.Tensor,
    *,
    group_size: int,
    kl_BT: torch.Tensor | None = None,
    beta: float = 0.0,
    gamma: float = 1.0,
    unbiased: bool = False,
    eps: float = 1e-8,
) -> torch.Tensor:
    """REINFORCE++ (Hu, arXiv 2501.03262): token rewards, return-to-go, global whitening.

    ``r_t = 1[t = last valid] * score - beta * kl_t``, ``A_t = sum_{s >= t} gamma^(s-t) r_s``,
    then ``(A - mean) / std`` over every valid token of the batch. ``kl_BT`` is the caller's
    per-token KL (REINFORCE++ uses k1 of the rollout log-probs, ``old_logp - ref_logp``); it is
    detached. Default whitening is OpenRLHF's (biased variance floored at ``eps``);
    ``unbiased=True`` is verl's (n-1 variance plus ``eps``). ``group_size`` only checks the
    batch layout: the normalization is global.

    Shapes:
        scores_B: (B,); mask_BT: (B, T); kl_BT: (B, T) or None; returns adv_BT: (B, T)
    """
    _check(scores_B, mask_BT, group_size)
    return _reinforce(
        scores_B.to(float_dtype(scores_B)), mask_BT, kl_BT, beta, gamma, unbiased, eps
    )


@ADVANTAGES.register("reinforce_pp_baseline")
def reinforce_pp_baseline(
    scores_B: torch.Tensor,
    mask_BT: torch.Tensor,
    *,
    group_size: int,
    kl_BT: torch.Tensor | None = None,
    beta: float = 0.0,
    gamma: float = 1.0,
    unbiased: bool = False,
    eps: float = 1e-8,
) -> torch.Tensor:
    """REINFORCE++-baseline, OpenRLHF variant: group-mean-centred outcome, then `reinforce_pp`.

    The outcome reward is centred by its group mean first; the per-token KL rewards, the
    return-to-go and the global whitening follow as in `reinforce_pp`. verl's variant instead
    sums the token rewards into one scalar per sequence before centring and broadcasts it; with
    ``beta = 0`` and ``gamma = 1`` both give the same advantages (verl whitens with
    ``unbiased=True``).

    Shapes:
        scores_B: (B,) with B = num_prompts * G; mask_BT: (B, T); kl_BT: (B, T) or None;
        returns adv_BT: (B, T)
    """
    _check(scores_B, mask_BT, group_size)
    r_PG = _groups(scores_B, group_size)
    centred_B = (r_PG - r_PG.mean(-1, keepdim=True)).reshape(-1)
    return _reinforce(centred_B, mask_BT, kl_BT, beta, gamma, unbiased, eps)


def compute_advantages(
    name: str, scores_B: torch.Tensor, mask_BT: torch.Tensor, group_size: int, **params
) -> torch.Tensor:
    """Look up estimator ``name`` in `ADVANTAGES` and call it; unknown parameters fail clearly.

    Shapes:
        scores_B: (B,) with B = num_prompts * G; mask_BT: (B, T); returns adv_BT: (B, T)
    """
    fn = ADVANTAGES.get(name)
    return call_with_params(
        "advantage estimator",
        name,
        fn,
        (scores_B, mask_BT),
        {"group_size": group_size, **params},
    )
