"""Vectorized algo code against slow, obviously-correct Python loops on random ragged batches."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from r1lab.algo import (
    ADVANTAGES,
    AGGREGATIONS,
    POLICY_LOSSES,
    batch_normalizers,
    policy_objective,
)

ATOL = 1e-9  # float64 everywhere: the loops and the vectorized code must agree to rounding


def ragged_batch(num_prompts: int, G: int, T: int, seed: int):
    """Random float64 batch with lengths in [1, T] (one row of length 0 when asked)."""
    gen = torch.Generator().manual_seed(seed)
    B = num_prompts * G
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).double()
    rnd = lambda: torch.randn(B, T, generator=gen, dtype=torch.float64)  # noqa: E731
    old = -rnd().abs() - 0.05
    new = old + 0.3 * rnd()
    ref = old + 0.3 * rnd()
    scores = torch.randint(0, 3, (B,), generator=gen).double() + 0.1 * rnd()[:, 0]
    adv = rnd()
    # junk on padding: must never matter
    for t in (old, new, ref, adv):
        t[mask == 0] = 5.0
    return scores, mask, old, new, ref, adv


def valid(mask, b):
    return [t for t in range(mask.shape[1]) if mask[b, t] > 0]


# --- advantages ---------------------------------------------------------------------------------


def outcome_oracle(name, scores, mask, G, eps=1e-6):
    out = torch.zeros_like(mask)
    r = scores.tolist()
    for p in range(len(r) // G):
        grp = r[p * G : (p + 1) * G]
        for j in range(G):
            i = p * G + j
            if name == "grpo":
                a = (grp[j] - statistics.mean(grp)) / (statistics.stdev(grp) + eps)
            elif name == "dr_grpo":
                a = grp[j] - statistics.mean(grp)
            else:  # rloo
                a = grp[j] - sum(grp[k] for k in range(G) if k != j) / (G - 1)
            for t in valid(mask, i):
                out[i, t] = a
    return out


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo"])
@pytest.mark.parametrize("seed", [0, 1])
def test_outcome_advantages_match_loops(name, seed):
    scores, mask, *_ = ragged_batch(3, 5, 7, seed)
    got = ADVANTAGES.get(name)(scores, mask, group_size=5)
    assert torch.allclose(got, outcome_oracle(name, scores, mask, 5), atol=ATOL)


def reinforce_oracle(scores, mask, G, kl, beta, gamma, unbiased, baseline, eps=1e-8):
    B, T = mask.shape
    r = scores.tolist()
    if baseline:
        r = [r[i] - statistics.mean(r[(i // G) * G : (i // G + 1) * G]) for i in range(B)]
    returns = {}
    for b in range(B):
        ts = valid(mask, b)
        rewards = {t: -beta * float(kl[b, t]) for t in ts}
        if ts:
            rewards[ts[-1]] += r[b]
        running = 0.0
        for t in reversed(ts):
            running = rewards[t] + gamma * running
            returns[(b, t)] = running
    vals = list(returns.values())
    mu = sum(vals) / len(vals)
    ss = sum((v - mu) ** 2 for v in vals)
    std = math.sqrt(ss / (len(vals) - 1) + eps) if unbiased else math.sqrt(max(ss / len(vals), eps))
    out = torch.zeros_like(mask)
    for (b, t), v in returns.items():
        out[b, t] = (v - mu) / std
    return out


@pytest.mark.parametrize("baseline", [False, True])
@pytest.mark.parametrize(
    ("beta", "gamma", "unbiased"), [(0.0, 1.0, False), (0.05, 1.0, True), (0.1, 0.9, False)]
)
def test_reinforce_pp_matches_loop(baseline, beta, gamma, unbiased):
    scores, mask, old, _, ref, _ = ragged_batch(2, 4, 6, seed=3)
    kl = old - ref
    name = "reinforce_pp_baseline" if baseline else "reinforce_pp"
    got = ADVANTAGES.get(name)(
        scores, mask, group_size=4, kl_BT=kl, beta=beta, gamma=gamma, unbiased=unbiased
    )
    want = reinforce_oracle(scores, mask, 4, kl, beta, gamma, unbiased, baseline)
    assert torch.allclose(got, want, atol=ATOL)


# --- aggregation --------------------------------------------------------------------------------


def agg_oracle(name, loss, mask, num_seqs=None, num_tokens=None, const_len=None):
    rows = [[float(loss[b, t]) for t in valid(mask, b)] for b in range(mask.shape[0])]
    rows = [r for r in rows if r]
    n_seq = num_seqs if num_seqs is not None else len(rows)
    n_tok = num_tokens if num_tokens is not None else sum(len(r) for r in rows)
    if name == "token_mean":
        return sum(sum(r) for r in rows) / n_tok
    if name == "seq_mean_token_mean":
        return sum(sum(r) / len(r) for r in rows) / n_seq
    if name == "seq_mean_token_sum":
        return sum(sum(r) for r in rows) / n_seq
    return sum(sum(r) for r in rows) / (n_seq * const_len)


@pytest.mark.parametrize(
    "name", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm"]
)
def test_aggregations_match_loops(name):
    _, mask, _, _, _, loss = ragged_batch(2, 3, 6, seed=4)
    mask[2] = 0  # an empty row (e.g. overlong-masked) neither adds loss nor counts
    got = AGGREGATIONS.get(name)(loss, mask, const_len=6)
    assert abs(float(got) - agg_oracle(name, loss, mask, const_len=6)) < ATOL
    got = AGGREGATIONS.get(name)(loss, mask, num_seqs=11.0, num_tokens=40.0, const_len=6)
    want = agg_oracle(name, loss, mask, num_seqs=11.0, num_tokens=40.0, const_len=6)
    assert abs(float(got) - want) < ATOL


def test_empty_batch_aggregates_to_zero():
    loss = torch.full((2, 3), float("nan"), dtype=torch.float64)
    mask = torch.zeros(2, 3)
    for name in AGGREGATIONS:
        assert float(AGGREGATIONS.get(name)(loss, mask, const_len=3)) == 0.0


# --- policy losses ------------------------------------------------------------------------------


def ppo_token(logp, old, a, eps_low, eps_high, c):
    rho = math.exp(max(-20.0, min(20.0, logp - old)))
    rho_c = min(max(rho, 1 - eps_low), 1 + eps_high)
    loss = max(-rho * a, -rho_c * a)
    if c is not None and a < 0:
        loss = min(loss, -c * a)
    clipped = (a > 0 and rho > 1 + eps_high) or (a < 0 and rho < 1 - eps_low)
    return loss, clipped, rho


@pytest.mark.parametrize(
    ("eps_low", "eps_high", "c"), [(0.2, 0.2, None), (0.2, 0.28, None), (0.1, 0.3, 1.5)]
)
def test_ppo_clip_matches_loop(eps_low, eps_high, c):
    _, mask, old, new, _, adv = ragged_batch(3, 4, 5, seed=5)
    new = new.clone()
    new[0, 0] = old[0, 0] + 30.0  # exercises the [-20, 20] log-ratio clamp
    loss, m = POLICY_LOSSES.get("ppo_clip")(
        new, old, adv, mask, eps_low=eps_low, eps_high=eps_high, clip_ratio_c=c
    )
    want = torch.zeros_like(mask)
    n_clip, rhos = 0, []
    for b in range(mask.shape[0]):
        for t in valid(mask, b):
            lo, cl, rho = ppo_token(
                float(new[b, t]), float(old[b, t]), float(adv[b, t]), eps_low, eps_high, c
            )
            want[b, t] = lo
            n_clip += cl
            rhos.append(rho)
    assert torch.allclose(loss, want, atol=ATOL, rtol=1e-12)
    assert abs(float(m["clip_frac"]) - n_clip / len(rhos)) < ATOL
    assert 0 < n_clip < len(rhos)  # the case actually exercises both branches
    assert abs(float(m["ratio_mean"]) - sum(rhos) / len(rhos)) < 1e-3
    assert float(m["ratio_max"]) == pytest.approx(math.exp(20.0))


def test_ppo_clip_gradient_is_minus_rho_a_where_unclipped():
    _, mask, old, new, _, adv = ragged_batch(2, 4, 5, seed=6)
    logp = new.clone().requires_grad_(True)
    loss, _ = POLICY_LOSSES.get("ppo_clip")(logp, old, adv, mask, eps_low=0.2, eps_high=0.2)
    loss.sum().backward()
    for b in range(mask.shape[0]):
        for t in range(mask.shape[1]):
            _, clipped, rho = ppo_token(
                float(new[b, t]), float(old[b, t]), float(adv[b, t]), 0.2, 0.2, None
            )
            want = 0.0 if (mask[b, t] == 0 or clipped) else -rho * float(adv[b, t])
            assert abs(float(logp.grad[b, t]) - want) < ATOL


def test_gspo_matches_sequence_form_values_and_gradients():
    """GSPO-token + seq_mean_token_mean == the paper's sequence objective, value and gradient."""
    scores, mask, old, new, _, _ = ragged_batch(2, 4, 6, seed=7)
    adv_B = ADVANTAGES.get("grpo")(scores, mask, group_size=4).amax(-1)
    adv_BT = adv_B[:, None] * mask
    eps_low, eps_high = 0.05, 0.08
    logp = new.clone().requires_grad_(True)
    loss, _ = policy_objective(
        logp, old, None, adv_BT, mask, loss="gspo", eps_low=eps_low, eps_high=eps_high
    )
    loss.backward()

    logp2 = new.clone().requires_grad_(True)
    terms = []
    for b in range(mask.shape[0]):
        ts = valid(mask, b)
        s = torch.exp(sum(logp2[b, t] - old[b, t] for t in ts) / len(ts))
        a = float(adv_B[b])
        terms.append(-torch.minimum(s * a, s.clamp(1 - eps_low, 1 + eps_high) * a))
    want = sum(terms) / len(terms)
    want.backward()
    assert abs(float(loss.detach()) - float(want.detach())) < ATOL
    assert torch.allclose(logp.grad, logp2.grad, atol=ATOL)
    assert logp.grad.abs().sum() > 0


# --- micro-batches with global normalizers ------------------------------------------------------


@pytest.mark.parametrize(
    ("loss_name", "agg"),
    [
        ("ppo_clip", a)
        for a in [
            "token_mean",
            "seq_mean_token_mean",
            "seq_mean_token_sum",
            "seq_mean_token_sum_norm",
        ]
    ]
    + [("gspo", "seq_mean_token_mean")],  # gspo is defined with this aggregation only
)
def test_micro_batches_sum_to_full_batch(loss_name, agg):
    scores, mask, old, new, ref, _ = ragged_batch(3, 4, 6, seed=8)
    mask[5] = 0  # an overlong-masked row
    adv = ADVANTAGES.get("grpo")(scores, mask, group_size=4)
    kw = {
        "loss": loss_name,
        "agg": agg,
        "beta": 0.04,
        "const_len": 6.0,
        "eps_low": 0.1,
        "eps_high": 0.15,
    }

    full_logp = new.clone().requires_grad_(True)
    full, _ = policy_objective(full_logp, old, ref, adv, mask, **kw)
    full.backward()

    norms = batch_normalizers(mask)
    assert norms == {"num_seqs": 11.0, "num_tokens": float(mask.sum())}
    micro_logp = new.clone().requires_grad_(True)
    total = 0.0
    for rows in (slice(0, 5), slice(5, 7), slice(7, 12)):
        T = int(mask[rows].sum(-1).max())  # micro-batches are cut to their own longest row
        part, _ = policy_objective(
            micro_logp[rows, :T],
            old[rows, :T],
            ref[rows, :T],
            adv[rows, :T],
            mask[rows, :T],
            **kw,
            **norms,
        )
        part.backward()
        total += float(part.detach())
    assert abs(total - float(full.detach())) < ATOL
    assert torch.allclose(micro_logp.grad, full_logp.grad, atol=ATOL)
