"""Every worked number of algorithms.md section 15 that concerns r1lab.algo, at atol 1e-6.

The data is section 3.1 (fixture ``w`` in conftest.py): G = 4, rewards [1, 0, 0, 1], lengths
2, 3, 1, 2, padded to T = 4 with junk.
"""

from __future__ import annotations

import pytest
import torch

from r1lab.algo import KL_ESTIMATORS, compute_advantages, policy_objective

ATOL = 1e-6


def close(actual, expected, atol: float = ATOL) -> None:
    a = torch.as_tensor(actual, dtype=torch.float64)
    e = torch.as_tensor(expected, dtype=torch.float64)
    assert a.shape == e.shape, (a.shape, e.shape)
    assert torch.allclose(a, e, atol=atol, rtol=0), f"\n got {a}\nwant {e}"


def close_rows(w, t_BT, expected_rows, atol: float = ATOL) -> None:
    """Compare the valid part of each row, and check padding is exactly 0."""
    got = w.per_row(t_BT)
    for g, e in zip(got, expected_rows):
        close(g, e, atol)
    assert torch.all(t_BT[w.mask == 0] == 0)


def adv(w, name: str, **params) -> torch.Tensor:
    return compute_advantages(name, w.scores, w.mask, 4, **params)


# --- advantages (sections 3.1, 4, 6) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "value"),
    [
        ("grpo", {}, 0.866024),
        ("grpo", {"eps": 1e-4}, 0.865875),  # TRL's epsilon
        ("dr_grpo", {}, 0.5),
        ("rloo", {}, 0.666667),
    ],
)
def test_outcome_advantages(w, name, params, value):
    a = adv(w, name, **params)
    expected = [[value] * 2, [-value] * 3, [-value], [value] * 2]
    close_rows(w, a, expected)


def test_reward_scale_grpo_invariant_dr_grpo_not(w):
    """Section 4 note: {0,1} and {-1,1} rewards give the same GRPO advantages; Dr. GRPO doubles."""
    pm1 = w.scores * 2 - 1
    close(compute_advantages("grpo", pm1, w.mask, 4), adv(w, "grpo"))
    close_rows(w, compute_advantages("dr_grpo", pm1, w.mask, 4), [[1, 1], [-1] * 3, [-1], [1, 1]])


# --- KL estimators (section 2) ------------------------------------------------------------------


def test_kl_estimators_token_values():
    lp = torch.tensor([[-0.8, -1.0]], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([[-1.1, -0.7]], dtype=torch.float64)
    close(KL_ESTIMATORS.get("k1")(lp, ref), [[0.3, -0.3]])
    close(KL_ESTIMATORS.get("k2")(lp, ref), [[0.045, 0.045]])
    k3 = KL_ESTIMATORS.get("k3")(lp, ref)
    close(k3, [[0.040818, 0.049859]])
    close(KL_ESTIMATORS.get("low_var_kl")(lp, ref), k3.detach())
    (g,) = torch.autograd.grad(k3[0, 0], lp)
    close(g[0, 0], 0.259182)


def test_k3_table_of_section_3_1(w):
    k3 = KL_ESTIMATORS.get("k3")(w.new, w.ref)
    close_rows(
        w,
        k3 * w.mask,
        [[0.040818, 0.005171], [0.049859, 0.040818, 0.018731], [0.049859], [0.018731, 0.040818]],
    )


def test_low_var_kl_clamp():
    lp = torch.tensor([[-25.0, 0.0]], dtype=torch.float64)  # u = 25 and u = -25
    ref = torch.tensor([[0.0, -25.0]], dtype=torch.float64)
    out = KL_ESTIMATORS.get("low_var_kl")(lp, ref)
    close(out[0, 0], 10.0)
    close(out[0, 1], 10.0)  # u -> -20: e^-20 + 20 - 1 = 19 -> clamped to 10
    assert KL_ESTIMATORS.get("k3")(lp, ref)[0, 0] > 1e10  # k3 itself is not clamped


def test_straight_through_kl_value_and_gradient():
    lp = torch.tensor([[-0.8]], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([[-1.1]], dtype=torch.float64)
    st = KL_ESTIMATORS.get("k3+")(lp, ref)
    close(st, [[0.040818]])
    (g,) = torch.autograd.grad(st.sum(), lp)
    close(g, [[0.3]])  # d k2 / d lp = lp - ref


# --- GRPO objective (section 3.1) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("beta", "expected"), [(0.0, -0.085821), (0.04, -0.084430), (0.001, -0.085786)]
)
def test_grpo_loss_seq_mean_token_mean(w, beta, expected):
    loss, m = policy_objective(
        w.new, w.old, w.ref, adv(w, "grpo"), w.mask, agg="seq_mean_token_mean", beta=beta
    )
    close(loss, expected)
    close(m["pg_loss"], -0.085821)
    close(m["kl"], 0.033101)
    close(m["clip_frac"], 3 / 8)  # o_11, o_31, o_42
    close(m["ratio_max"], 1.349859)
    close(m["ratio_min"], 0.740818)


def test_grpo_gradients_seq_mean_token_mean(w):
    logp = w.logp()
    loss, _ = policy_objective(logp, w.old, None, adv(w, "grpo"), w.mask, beta=0.0)
    loss.backward()
    close_rows(
        w,
        logp.grad,
        [[0, -0.108253], [0.059087, 0.097417, 0.072169], [0], [-0.119638, 0]],
    )


def test_grpo_loss_token_mean(w):
    a = adv(w, "grpo")
    loss0, m = policy_objective(w.new, w.old, w.ref, a, w.mask, agg="token_mean", beta=0.0)
    close(loss0, -0.058087)
    close(m["kl"], 0.033101)
    loss1, _ = policy_objective(w.new, w.old, w.ref, a, w.mask, agg="token_mean", beta=0.001)
    close(loss1, -0.058053)


def test_grpo_population_std_advantages(w):
    a = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64)[:, None] * w.mask
    loss, _ = policy_objective(w.new, w.old, None, a, w.mask)
    close(loss, -0.099097)


def test_dapo_loss_and_gradients(w):
    logp = w.logp()
    loss, m = policy_objective(
        logp, w.old, None, adv(w, "grpo"), w.mask, agg="token_mean", eps_low=0.2, eps_high=0.28
    )
    close(loss, -0.069064)
    close(m["clip_frac"], 2 / 8)  # o_31 and o_42 only: o_11 is unclipped under clip-higher
    loss.backward()
    close_rows(
        w,
        logp.grad,
        [[-0.132220, -0.108253], [0.088630, 0.146126, 0.108253], [0], [-0.119638, 0]],
    )


def test_dr_grpo_loss_and_gradients(w):
    logp = w.logp()
    loss, _ = policy_objective(
        logp, w.old, None, adv(w, "dr_grpo"), w.mask, agg="seq_mean_token_sum_norm", const_len=4
    )
    close(loss, -0.016768)
    loss.backward()
    close_rows(
        w,
        logp.grad,
        [[0, -0.03125], [0.025585, 0.042183, 0.03125], [0], [-0.034537, 0]],
    )


def test_rloo_loss(w):
    loss, _ = policy_objective(w.new, w.old, None, adv(w, "rloo"), w.mask, agg="token_mean")
    close(loss, -0.044715)


@pytest.mark.parametrize(
    ("eps_low", "eps_high", "expected"), [(3e-4, 4e-4, 0.007100), (0.2, 0.2, -0.102034)]
)
def test_gspo_loss(w, eps_low, eps_high, expected):
    loss, m = policy_objective(
        w.new, w.old, None, adv(w, "grpo"), w.mask, loss="gspo", eps_low=eps_low, eps_high=eps_high
    )
    close(loss, expected)
    close(m["ratio_max"], 1.221403)
    close(m["ratio_min"], 0.740818)


def test_gspo_sequence_ratios(w):
    from r1lab.algo.losses import gspo

    _, m = gspo(w.new, w.old, adv(w, "grpo"), w.mask, eps_low=0.2, eps_high=0.2)
    s = [1.105171, 1.033895, 0.740818, 1.221403]
    lengths = [2, 3, 1, 2]
    close(m["ratio_mean"], sum(si * n for si, n in zip(s, lengths)) / 8)


# --- REINFORCE++ (section 7) --------------------------------------------------------------------

OPENRLHF = [
    [0.999884, 1.019635],
    [-0.994946, -1.014697, -1.014697],
    [-0.975196],
    [0.980133, 0.999884],
]
VERL = [[0.935306, 0.953781], [-0.930687, -0.949162, -0.949162], [-0.912212], [0.916831, 0.935306]]


@pytest.mark.parametrize(
    ("name", "unbiased", "expected"),
    [
        ("reinforce_pp", False, OPENRLHF),
        ("reinforce_pp", True, VERL),
        ("reinforce_pp_baseline", False, OPENRLHF),  # one group: the baseline cancels
    ],
)
def test_reinforce_pp(w, name, unbiased, expected):
    kl_BT = KL_ESTIMATORS.get("k1")(w.old, w.ref)  # rollout policy vs reference, junk on padding
    a = adv(w, name, kl_BT=kl_BT, beta=0.1, unbiased=unbiased)
    close_rows(w, a, expected)
