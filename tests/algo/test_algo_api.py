"""The public contract of r1lab.algo: registries, errors, edge cases, filters, metrics."""

from __future__ import annotations

import pytest
import torch

from r1lab.algo import (
    ADVANTAGES,
    AGGREGATIONS,
    KL_ESTIMATORS,
    POLICY_LOSSES,
    AlgoError,
    batch_normalizers,
    compute_advantages,
    informative_groups,
    overlong_mask,
    policy_objective,
)
from r1lab.errors import R1LabError
from r1lab.registry import RegistryError


def test_registries_hold_the_papers_names():
    assert ADVANTAGES.names() == [
        "dr_grpo",
        "grpo",
        "reinforce_pp",
        "reinforce_pp_baseline",
        "rloo",
    ]
    assert {"k1", "k2", "k3", "low_var_kl"} <= set(KL_ESTIMATORS.names())
    assert POLICY_LOSSES.names() == ["gspo", "ppo_clip"]
    assert AGGREGATIONS.names() == [
        "seq_mean_token_mean",
        "seq_mean_token_sum",
        "seq_mean_token_sum_norm",
        "token_mean",
    ]


def test_unknown_names_list_the_known_ones(w):
    with pytest.raises(
        RegistryError, match="unknown advantage estimator 'ppo'; known: dr_grpo, grpo"
    ):
        compute_advantages("ppo", w.scores, w.mask, 4)
    a = compute_advantages("grpo", w.scores, w.mask, 4)
    for kw, msg in [
        ({"loss": "ppo"}, "known: gspo, ppo_clip"),
        ({"agg": "mean"}, "known: seq_mean_token_mean, seq_mean_token_sum"),
        ({"kl": "k4"}, "known: k1, k2, k3"),
    ]:
        with pytest.raises(RegistryError, match=msg):
            policy_objective(w.new, w.old, None, a, w.mask, **kw)


def test_unknown_parameters_list_the_accepted_ones(w):
    with pytest.raises(
        AlgoError, match="'rloo' got unknown parameter.*unbiased.*accepted: group_size, eps"
    ):
        compute_advantages("rloo", w.scores, w.mask, 4, unbiased=True)
    a = compute_advantages("grpo", w.scores, w.mask, 4)
    with pytest.raises(AlgoError, match="'gspo' got unknown parameter.*clip_ratio_c"):
        policy_objective(
            w.new, w.old, None, a, w.mask, loss="gspo", loss_params={"clip_ratio_c": 3.0}
        )


def test_every_estimator_accepts_eps(w):
    """The GRPO pipeline passes ``eps`` whatever the estimator; it must never be rejected."""
    for name in ADVANTAGES:
        out = compute_advantages(name, w.scores, w.mask, 4, eps=1e-6)
        assert out.shape == w.mask.shape


def test_errors_are_value_errors_and_r1lab_errors(w):
    a = compute_advantages("dr_grpo", w.scores, w.mask, 4)
    with pytest.raises(ValueError, match="needs const_len"):
        AGGREGATIONS.get("seq_mean_token_sum_norm")(a, w.mask)
    with pytest.raises(R1LabError, match="needs const_len"):
        policy_objective(w.new, w.old, None, a, w.mask, agg="seq_mean_token_sum_norm")


@pytest.mark.parametrize(
    ("call", "msg"),
    [
        (
            lambda w: compute_advantages("grpo", w.scores[:, None], w.mask, 4),
            r"scores_B must have shape \(\*\)",
        ),
        (
            lambda w: compute_advantages("grpo", w.scores, w.mask[:3], 4),
            r"mask_BT must have shape \(4, \*\)",
        ),
        (
            lambda w: compute_advantages("grpo", w.scores, w.mask, 3),
            "not a whole number of groups of 3",
        ),
        (lambda w: compute_advantages("rloo", w.scores, w.mask, 1), "rloo needs group_size >= 2"),
        (
            lambda w: compute_advantages("reinforce_pp", w.scores, w.mask, 4, beta=0.1),
            "needs kl_BT",
        ),
        (
            lambda w: policy_objective(w.new, w.old[:, :3], None, w.mask, w.mask),
            r"old_logp_BT must have shape \(4, 4\)",
        ),
        (
            lambda w: policy_objective(w.new, w.old, None, w.mask, w.mask, beta=0.04),
            "needs ref_logp_BT",
        ),
        (
            lambda w: policy_objective(
                w.new, w.old, None, w.mask, w.mask, loss="gspo", agg="token_mean"
            ),
            "agg='seq_mean_token_mean'",
        ),
        (
            lambda w: policy_objective(
                w.new, w.old, None, w.mask, w.mask, loss_params={"clip_ratio_c": 0.5}
            ),
            "must be > 1",
        ),
        (
            lambda w: policy_objective(w.new, w.old, None, w.mask, w.mask, eps_low=1.0),
            "eps_low must be in",
        ),
        (
            lambda w: AGGREGATIONS.get("token_mean")(w.new, w.mask, num_tokens=0),
            "num_tokens must be > 0",
        ),
        (lambda w: informative_groups(w.scores, 3), "not a whole number"),
        (lambda w: overlong_mask(w.mask, torch.tensor([0, 1, 0, 0])), "bool"),
    ],
)
def test_bad_input_fails_with_a_message(w, call, msg):
    with pytest.raises(AlgoError, match=msg):
        call(w)


def test_group_edge_cases():
    scores = torch.tensor([0.3, -1.0, 2.0])
    mask = torch.tensor([[1, 1], [1, 0], [0, 0]])
    for name in ("grpo", "dr_grpo"):  # G = 1: no baseline, raw reward (verl)
        out = compute_advantages(name, scores, mask, 1)
        assert torch.equal(out, torch.tensor([[0.3, 0.3], [-1.0, 0.0], [0.0, 0.0]]))
    same = compute_advantages("grpo", torch.tensor([1.0, 1.0, 0.0, 0.0]), torch.ones(4, 3), 2)
    assert torch.equal(same, torch.zeros(4, 3))  # identical rewards: no signal, no NaN
    assert same.dtype == torch.float32


def test_dual_clip_caps_negative_advantage_loss():
    logp = torch.tensor([[2.0, 2.0, 0.0]], requires_grad=True)  # rho = e^2 = 7.39 on two tokens
    old = torch.zeros(1, 3)
    adv = torch.tensor([[-1.0, 1.0, -1.0]])
    mask = torch.ones(1, 3)
    loss, m = POLICY_LOSSES.get("ppo_clip")(
        logp, old, adv, mask, eps_low=0.2, eps_high=0.2, clip_ratio_c=3.0
    )
    assert torch.allclose(loss, torch.tensor([[3.0, -1.2, 1.0]]))
    assert float(m["dual_clip_frac"]) == pytest.approx(1 / 3)
    assert float(m["clip_frac"]) == pytest.approx(1 / 3)  # token 2: A > 0, rho > 1.2
    loss.sum().backward()
    assert torch.allclose(logp.grad, torch.tensor([[0.0, 0.0, 1.0]]))  # only the unclipped token


def test_entropy_is_a_metric_and_approx_kl_is_the_k3_of_the_ratio(w):
    a = compute_advantages("grpo", w.scores, w.mask, 4)
    ent = torch.full_like(w.new, 2.0).requires_grad_(True)
    base, _ = policy_objective(w.new, w.old, w.ref, a, w.mask, agg="token_mean")
    loss, m = policy_objective(w.new, w.old, w.ref, a, w.mask, agg="token_mean", entropy_BT=ent)
    assert float(loss) == float(base)  # no entropy bonus: the entropy only reaches the metrics
    assert float(m["entropy"]) == pytest.approx(2.0)
    # d = new - old = (0.2, 0), (-0.2, 0.3, 0), (-0.3), (0.1, 0.3); mean of e^d - 1 - d
    assert float(m["approx_kl"]) == pytest.approx(0.023230033143, abs=1e-10)
    _, same = policy_objective(w.old, w.old, w.ref, a, w.mask)
    assert float(same["approx_kl"]) == 0.0
    expected = {"pg_loss", "kl", "entropy", "approx_kl", "clip_frac", "ratio_mean", "ratio_min"}
    assert set(m) == expected | {"ratio_max"}
    assert all(v.dim() == 0 and not v.requires_grad for v in m.values())


def test_float32_inputs_give_float32_loss(w):
    f = {k: getattr(w, k).float() for k in ("new", "old", "ref", "mask")}
    a = compute_advantages("grpo", w.scores.float(), f["mask"], 4)
    loss, _ = policy_objective(f["new"], f["old"], f["ref"], a, f["mask"], beta=0.04)
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx(-0.084430, abs=1e-6)


# --- DAPO filters -------------------------------------------------------------------------------


def test_informative_groups_section_5_example():
    scores = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0], dtype=torch.float32)
    assert informative_groups(scores, 4).tolist() == [False, False, True, True]
    near = torch.tensor([1.0, 1.0 + 1e-9, 0.5, 0.5 + 1e-3])
    assert informative_groups(near, 2).tolist() == [False, True]
    assert informative_groups(near, 2, atol=1e-2).tolist() == [False, False]
    with pytest.raises(AlgoError, match="NaN"):
        informative_groups(torch.tensor([1.0, float("nan")]), 2)


def test_overlong_rows_leave_the_loss_and_the_counts(w):
    truncated = torch.tensor([False, True, False, False])
    mask = overlong_mask(w.mask, truncated)
    assert mask.dtype == w.mask.dtype
    assert mask[1].sum() == 0 and torch.equal(mask[[0, 2, 3]], w.mask[[0, 2, 3]])
    assert batch_normalizers(mask) == {"num_seqs": 3.0, "num_tokens": 5.0}
    bool_mask = overlong_mask(w.mask.bool(), truncated)
    assert bool_mask.dtype == torch.bool and torch.equal(bool_mask, mask.bool())

    a = compute_advantages("grpo", w.scores, w.mask, 4)
    keep = [0, 2, 3]
    for agg in ("token_mean", "seq_mean_token_mean"):
        got, _ = policy_objective(w.new, w.old, w.ref, a, mask, agg=agg, beta=0.04)
        want, _ = policy_objective(
            w.new[keep], w.old[keep], w.ref[keep], a[keep], w.mask[keep], agg=agg, beta=0.04
        )
        assert float(got) == pytest.approx(float(want), abs=1e-12)
