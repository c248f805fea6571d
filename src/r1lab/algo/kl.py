"""Per-token estimators of KL(pi_theta || pi_ref) from sampled tokens (algorithms.md section 2).

With ``u = ref_logp - logp`` (so pi_ref / pi_theta = e^u), Schulman's estimators:

* ``k1 = -u``                 unbiased, high variance, can be negative per token
* ``k2 = u^2 / 2``            biased, low variance; its gradient is the on-policy reverse-KL one
* ``k3 = e^u - u - 1``        unbiased, >= 0; DeepSeekMath / R1 Eq. 2 (no clamp here)
* ``low_var_kl``              verl's k3: ``u`` clamped to [-20, 20], the result to [-10, 10]
* ``k3+`` / ``low_var_kl+``   straight-through (verl's ``+`` suffix): forward value of the
  named estimator, backward gradient of k2

Where the KL goes (loss vs. reward) is the caller's choice: `grpo_loss.policy_objective` adds
``beta * kl`` to the per-token loss; `advantages.reinforce_pp` takes a ``kl_BT`` for reward
shaping (usually ``k1`` of the rollout log-probs, computed without gradient).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from r1lab.algo._checks import check_shape
from r1lab.registry import Registry

KLFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

KL_ESTIMATORS: Registry[KLFn] = Registry("KL estimator")


def _check(logp_BT: torch.Tensor, ref_logp_BT: torch.Tensor) -> None:
    check_shape("logp_BT", logp_BT, (None, None))
    check_shape("ref_logp_BT", ref_logp_BT, tuple(logp_BT.shape))


@KL_ESTIMATORS.register("k1")
def k1(logp_BT: torch.Tensor, ref_logp_BT: torch.Tensor) -> torch.Tensor:
    """``logp - ref_logp`` per token.

    Shapes:
        logp_BT, ref_logp_BT: (B, T); returns kl_BT: (B, T)
    """
    _check(logp_BT, ref_logp_BT)
    return logp_BT - ref_logp_BT


@KL_ESTIMATORS.register("k2")
def k2(logp_BT: torch.Tensor, ref_logp_BT: torch.Tensor) -> torch.Tensor:
    """``(logp - ref_logp)^2 / 2`` per token.

    Shapes:
        logp_BT, ref_logp_BT: (B, T); returns kl_BT: (B, T)
    """
    _check(logp_BT, ref_logp_BT)
    return 0.5 * (logp_BT - ref_logp_BT).square()


@KL_ESTIMATORS.register("k3")
def k3(logp_BT: torch.Tensor, ref_logp_BT: torch.Tensor) -> torch.Tensor:
    """``e^u - u - 1`` with ``u = ref_logp - logp`` (DeepSeekMath Eq. 2), unclamped.

    Gradient w.r.t. ``logp`` is ``1 - e^u``.

    Shapes:
        logp_BT, ref_logp_BT: (B, T); returns kl_BT: (B, T)
    """
    _check(logp_BT, ref_logp_BT)
    u = ref_logp_BT - logp_BT
    # expm1(u) - u == e^u - 1 - u, without the cancellation error of exp(u) - 1 near u = 0
    return torch.expm1(u) - u


@KL_ESTIMATORS.register("low_var_kl")
def low_var_kl(logp_BT: torch.Tensor, ref_logp_BT: torch.Tensor) -> torch.Tensor:
    """verl's clamped k3: ``u`` clamped to [-20, 20], ``e^u - u - 1`` clamped to [-10, 10].

    Shapes:
        logp_BT, ref_logp_BT: (B, T); returns kl_BT: (B, T)
    """
    _check(logp_BT, ref_logp_BT)
    u = (ref_logp_BT - logp_BT).clamp(-20.0, 20.0)
    return (torch.expm1(u) - u).clamp(-10.0, 10.0)


def _straight_through(estimator: KLFn) -> KLFn:
    def fn(logp_BT: torch.Tensor, ref_logp_BT: torch.Tensor) -> torch.Tensor:
        value = estimator(logp_BT, ref_logp_BT)
        grad_path = k2(logp_BT, ref_logp_BT)
        return value.detach() + grad_path - grad_path.detach()

    fn.__doc__ = (
        f"Value of {estimator.__name__}, gradient of k2 (straight-through).\n\n"
        "    Shapes:\n        logp_BT, ref_logp_BT: (B, T); returns kl_BT: (B, T)\n"
    )
    return fn


KL_ESTIMATORS.add("k3+", _straight_through(k3))
KL_ESTIMATORS.add("low_var_kl+", _straight_through(low_var_kl))
