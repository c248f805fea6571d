"""The GRPO-family objective: policy loss + in-loss KL, then one aggregation.

DeepSeekMath Eq. 3 / DeepSeek-R1 Eq. 1-3 (algorithms.md section 3), as a loss to MINIMISE:

    l_it = -min(rho_it A_it, clip(rho_it, 1-eps_low, 1+eps_high) A_it) + beta * KL_it
    loss = aggregate(l, mask)            (seq_mean_token_mean = the paper's (1/G) sum_i 1/abs(o_i))

The KL sits inside the per-token sum, so it gets the same weights as the policy-gradient term;
it is computed from the CURRENT policy's log-probs (``logp``), not the sampling policy's. Dr. GRPO,
DAPO and GSPO are other choices of ``loss``, ``agg``, ``eps_low``/``eps_high`` and ``beta`` here,
not other functions.

No entropy bonus: none of the reproduced recipes (DeepSeekMath / R1, DAPO, Dr. GRPO, GSPO,
REINFORCE++) uses one, and the learner's entropy is a detached metric.

Not here: advantages (computed once per rollout batch, `advantages.py`), the micro-batch loop
and the global normalizers (the learner computes those and passes them in).
"""

from __future__ import annotations

import torch

from r1lab.algo._checks import AlgoError, call_with_params, check_shape
from r1lab.algo.aggregate import AGGREGATIONS, masked_mean
from r1lab.algo.kl import KL_ESTIMATORS
from r1lab.algo.losses import LOG_RATIO_CLAMP, POLICY_LOSSES

# losses defined at sequence level whose per-token matrix only reproduces the paper's objective
# under one aggregation (see losses.gspo)
_REQUIRED_AGG = {"gspo": "seq_mean_token_mean"}


def policy_objective(
    logp_BT: torch.Tensor,
    old_logp_BT: torch.Tensor,
    ref_logp_BT: torch.Tensor | None,
    adv_BT: torch.Tensor,
    mask_BT: torch.Tensor,
    *,
    loss: str = "ppo_clip",
    agg: str = "seq_mean_token_mean",
    kl: str = "k3",
    beta: float = 0.0,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    num_seqs: float | None = None,
    num_tokens: float | None = None,
    const_len: float | None = None,
    entropy_BT: torch.Tensor | None = None,
    loss_params: dict | None = None,
    token_weight_BT: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Scalar GRPO-family loss and detached metrics for one (micro-)batch.

    Per token: ``POLICY_LOSSES[loss] + beta * KL_ESTIMATORS[kl](logp, ref_logp)``, aggregated by
    ``AGGREGATIONS[agg]`` with the global ``num_seqs`` / ``num_tokens`` (``None`` = this batch)
    and ``const_len``. ``ref_logp_BT`` may be ``None`` only when ``beta == 0``; ``entropy_BT``
    (no gradient needed) is only reported as a metric. ``loss_params`` go to the
    policy loss (e.g. ``{"clip_ratio_c": 3.0}`` for ppo_clip's dual clip). ``gspo`` requires
    ``agg="seq_mean_token_mean"``. ``token_weight_BT`` (``None`` = all ones) multiplies the
    per-token policy loss before the KL is added, without gradient: the truncated
    importance-sampling weights of `is_correction.truncated_is_weights`.

    Metrics (0-dim, detached, LOCAL to this batch so that a learner can weight micro-batches by
    their token share): ``pg_loss`` (policy term aggregated with this batch's own normalizers),
    ``kl`` (mean over valid tokens, whenever ``ref_logp_BT`` is given), ``entropy`` (mean over
    valid tokens, when given), ``approx_kl`` (the k3 estimate of KL(pi_old || pi_theta) from the
    old policy's samples, mean of ``rho - 1 - log rho`` with the token ratio
    ``rho = exp(logp - old_logp)``, log-ratio clamped to [-20, 20]: 0 before the first update of
    a rollout batch, how far the mini-batch updates moved the policy after it), and the policy
    loss's ``clip_frac``, ``ratio_mean``, ``ratio_min``, ``ratio_max`` (+ ``dual_clip_frac``
    with dual clip).

    Shapes:
        logp_BT, old_logp_BT, ref_logp_BT, adv_BT, mask_BT, entropy_BT, token_weight_BT: (B, T);
        returns loss: (), metrics: dict of ()
    """
    check_shape("logp_BT", logp_BT, (None, None))
    shape = tuple(logp_BT.shape)
    for name, t in (
        ("ref_logp_BT", ref_logp_BT),
        ("entropy_BT", entropy_BT),
        ("token_weight_BT", token_weight_BT),
    ):
        if t is not None:
            check_shape(name, t, shape)
    required = _REQUIRED_AGG.get(loss)
    if required is not None and agg != required:
        raise AlgoError(f"policy loss {loss!r} is defined with agg={required!r}, got agg={agg!r}")
    loss_fn = POLICY_LOSSES.get(loss)
    agg_fn = AGGREGATIONS.get(agg)
    norms = {"num_seqs": num_seqs, "num_tokens": num_tokens, "const_len": const_len}

    pg_BT, metrics = call_with_params(
        "policy loss",
        loss,
        loss_fn,
        (logp_BT, old_logp_BT, adv_BT, mask_BT),
        {"eps_low": eps_low, "eps_high": eps_high, **(loss_params or {})},
    )
    if token_weight_BT is not None:
        pg_BT = pg_BT * token_weight_BT.detach().to(pg_BT.dtype)
    total_BT = pg_BT
    metrics = dict(metrics)
    with torch.no_grad():
        metrics["pg_loss"] = agg_fn(pg_BT.detach(), mask_BT, const_len=const_len)
        d = (logp_BT.detach() - old_logp_BT).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
        metrics["approx_kl"] = masked_mean(torch.expm1(d) - d, mask_BT)

    kl_fn = KL_ESTIMATORS.get(kl)
    if ref_logp_BT is None:
        if beta != 0.0:
            raise AlgoError(f"beta={beta} needs ref_logp_BT (the reference model's log-probs)")
    else:
        kl_BT = kl_fn(logp_BT, ref_logp_BT)
        metrics["kl"] = masked_mean(kl_BT.detach(), mask_BT)
        if beta != 0.0:
            total_BT = total_BT + beta * kl_BT

    if entropy_BT is not None:
        metrics["entropy"] = masked_mean(entropy_BT.detach(), mask_BT)

    value = agg_fn(total_BT, mask_BT, **norms)
    return value, {k: v.detach() for k, v in metrics.items()}
