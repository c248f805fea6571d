"""Truncated importance sampling and the sampler/trainer mismatch metrics, hand-computed at
atol 1e-6; and the per-token weight of `policy_objective`."""

from __future__ import annotations

import math

import pytest
import torch

from r1lab.algo import (
    IS_CORRECTIONS,
    AlgoError,
    mismatch_metrics,
    policy_objective,
    truncated_is_weights,
)

ATOL = 1e-6
LN2 = math.log(2.0)


def close(actual, expected) -> None:
    a = torch.as_tensor(actual, dtype=torch.float64)
    e = torch.as_tensor(expected, dtype=torch.float64)
    assert a.shape == e.shape, (a.shape, e.shape)
    assert torch.allclose(a, e, atol=ATOL, rtol=0), f"\n got {a}\nwant {e}"


def pair():
    """Trainer/sampler probabilities 0.5/0.25, 0.2/0.8, 1/1 and 0.9/0.9 on the 4 valid tokens;
    padding holds junk (d = 10) that would dominate every metric if it leaked in."""
    trainer = torch.tensor([[math.log(0.5), math.log(0.2), 0.0], [math.log(0.9), 5.0, 5.0]])
    sampler = torch.tensor([[math.log(0.25), math.log(0.8), 0.0], [math.log(0.9), -5.0, -5.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    return trainer, sampler, mask


def test_tis_weights_are_capped_ratios_and_zero_on_padding():
    trainer, sampler, mask = pair()
    w = truncated_is_weights(trainer, sampler, mask, cap=1.5)
    # ratios 2, 0.25, 1, 1 -> cap 1.5 on the first
    close(w, [[1.5, 0.25, 1.0], [1.0, 0.0, 0.0]])
    assert not w.requires_grad
    assert IS_CORRECTIONS.get("tis") is truncated_is_weights
    close(truncated_is_weights(trainer, sampler, mask, cap=10.0)[0], [2.0, 0.25, 1.0])


def test_mismatch_metrics_by_hand():
    trainer, sampler, mask = pair()
    w = truncated_is_weights(trainer, sampler, mask, cap=1.5)
    m = mismatch_metrics(trainer, sampler, mask, w, cap=1.5)
    # d = trainer - sampler = ln2, -2 ln2, 0, 0 on the valid tokens
    close(m["mismatch/abs_logp_diff"], 3 * LN2 / 4)
    close(m["mismatch/abs_logp_diff_max"], 2 * LN2)
    # k3 = e^d - d - 1: (1 - ln2) + (0.25 + 2 ln2 - 1) + 0 + 0, over 4 tokens
    close(m["mismatch/k3"], (0.25 + LN2) / 4)
    close(m["mismatch/is_weight_mean"], (1.5 + 0.25 + 1.0 + 1.0) / 4)
    close(m["mismatch/is_capped_frac"], 0.25)
    identical = mismatch_metrics(trainer, trainer.clone(), mask)
    assert set(identical) == {"mismatch/abs_logp_diff", "mismatch/abs_logp_diff_max", "mismatch/k3"}
    assert all(float(v) == 0.0 for v in identical.values())


def test_bad_inputs_fail_with_one_line():
    trainer, sampler, mask = pair()
    with pytest.raises(AlgoError, match="cap must be > 0"):
        truncated_is_weights(trainer, sampler, mask, cap=0.0)
    with pytest.raises(AlgoError, match="sampler_logp_BT must have shape"):
        truncated_is_weights(trainer, sampler[:, :2], mask, cap=2.0)


def test_policy_objective_token_weight_scales_the_policy_term_only():
    logp = torch.tensor([[-1.0, -1.0]], requires_grad=True)
    old = torch.tensor([[-1.0, -1.0]])  # ratio 1: per-token ppo_clip loss is -A
    adv = torch.tensor([[1.0, -2.0]])
    mask = torch.ones(1, 2)
    kw = {"loss": "ppo_clip", "agg": "token_mean", "beta": 0.0}
    plain, _ = policy_objective(logp, old, None, adv, mask, **kw)
    ones, _ = policy_objective(logp, old, None, adv, mask, token_weight_BT=torch.ones(1, 2), **kw)
    assert float(plain.detach()) == float(ones.detach()) == pytest.approx(0.5, abs=ATOL)  # (-1+2)/2
    w = torch.tensor([[0.5, 2.0]])
    loss, _ = policy_objective(logp, old, None, adv, mask, token_weight_BT=w, **kw)
    close(loss, (-0.5 + 4.0) / 2)
    loss.backward()
    close(logp.grad, [[-0.25, 2.0]])  # d/dlogp (-A w rho) / n at rho = 1
    # the KL term is not weighted: u = ref - logp = ln2, 0 -> k3 = 1 - ln2, 0
    ref = torch.tensor([[-1.0 + LN2, -1.0]])
    kl_kw = {**kw, "beta": 0.1}
    loss, metrics = policy_objective(logp.detach(), old, ref, adv, mask, token_weight_BT=w, **kl_kw)
    close(loss, (-0.5 + 0.1 * (1 - LN2) + 4.0) / 2)
    close(metrics["kl"], (1 - LN2) / 2)
    with pytest.raises(AlgoError, match="token_weight_BT must have shape"):
        policy_objective(logp, old, None, adv, mask, token_weight_BT=w[:, :1], **kw)
