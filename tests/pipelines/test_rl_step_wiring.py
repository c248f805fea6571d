"""The wiring of `rl_step`: which tensors reach the objective, how many optimizer steps a rollout
batch makes, what the mini-batches do to the clip, where the metrics come from.

Most tests run the real step on a random plain-transformers Qwen2 and replace
`rl_step.policy_objective` by a spy that calls the real objective and records its inputs and
the gradient of the loss w.r.t. the current log-probs. Each test names the one-line edit of the
wiring it catches.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from r1lab.config import load_config
from r1lab.engines.hf import completion_logprobs
from r1lab.engines.hf_learner import TrainBatch, padded
from r1lab.pipelines import rl_step
from r1lab.pipelines.common import prompts_for, task_examples
from r1lab.pipelines.grpo_policy import build_policy
from r1lab.pipelines.rl_config import RLConfig
from r1lab.pipelines.rollouts import StepRollouts, collect_step
from r1lab.rewards import REWARDS, RewardResult
from r1lab.rewards.combine import RewardComponent, RewardTable
from r1lab.types import Example, Rollout

sys.path.insert(0, str(Path(__file__).parent))
from test_grpo import char_tokenizer, plain_qwen2  # noqa: E402

if "text_len" not in REWARDS:

    @REWARDS.register("text_len")
    def text_len(c, **_):
        """Characters / 10: differs within a group whenever the completions' lengths do."""
        return RewardResult(len(c.text) / 10)


class Spy:
    """Calls the real objective; records its inputs and d loss / d logp of every call."""

    def __init__(self, real) -> None:
        self.real, self.calls = real, []

    def __call__(self, logp, old, ref, adv, mask, **kw):
        loss, metrics = self.real(logp, old, ref, adv, mask, **kw)
        grad = torch.autograd.grad(loss, logp, retain_graph=True)[0]
        self.calls.append(
            {
                "old": old.clone(),
                "ref": None if ref is None else ref.clone(),
                "mask": mask,
                "grad": grad,
            }
        )
        return loss, metrics


@pytest.fixture()
def spy(monkeypatch) -> Spy:
    s = Spy(rl_step.policy_objective)
    monkeypatch.setattr(rl_step, "policy_objective", s)
    return s


def make_step(tmp_path, *extra):
    """(cfg, policy, next_prompts) of a random Qwen2 whose completions end at a lowercase letter
    (lengths vary, some hit the limit) on the chat template."""
    tok = char_tokenizer()
    torch.manual_seed(0)
    model = plain_qwen2(tok)
    letters = [tok.convert_tokens_to_ids(ch) for ch in "abcdefghijklmnopqrstuvwxyz"]
    model.generation_config.eos_token_id = [tok.eos_token_id, *letters]
    cfg = load_config(
        RLConfig,
        "r1_zero_tiny",
        [
            "threads=1",
            "data.template=chat",
            "data.n_train=16",
            "grpo.prompts_per_step=2",
            "grpo.group_size=4",
            "grpo.mini_batches=1",
            "grpo.lr=0.05",
            "sampling.max_new_tokens=8",
            "sampling.stop=[]",
            "rewards=[{name: text_len}]",
            *extra,
        ],
    )
    policy = build_policy(cfg, model, tok, tmp_path)
    train = task_examples(cfg.data, "train")
    prompts = prompts_for(train, cfg.data.template, tok)
    cursor = [0]

    def next_prompts(n):
        idx = [(cursor[0] + i) % len(train) for i in range(n)]
        cursor[0] += n
        return [(prompts[i], train[i]) for i in idx]

    return cfg, policy, next_prompts


def logprobs_under(model, policy, rollouts) -> torch.Tensor:
    with torch.no_grad():
        logp, _ = completion_logprobs(
            model,
            [r.prompt_ids for r in rollouts],
            [r.completion_ids for r in rollouts],
            pad_id=policy.generator.pad_id,
        )
    return logp


def masked_close(a, b, mask, atol=1e-5) -> bool:
    T = mask.size(1)
    return bool(((a[:, :T] - b[:, :T]).abs() * mask).max() <= atol)


@pytest.mark.parametrize("mode", ["sampler", "trainer"])
def test_the_objective_gets_the_chosen_old_logprobs_and_the_reference_as_ref(tmp_path, spy, mode):
    """Edits caught: old and ref swapped in `objective` (sampler); `score_batch` ignoring
    ``old_logprobs`` (either way round); the reference's log-probs not set."""
    cfg, policy, next_prompts = make_step(
        tmp_path, f"grpo.old_logprobs={mode}", "grpo.beta=0.04", "sampling.top_k=3"
    )
    res = rl_step.rl_step(cfg, policy, next_prompts, 0, 2)
    rollouts = res.rollouts.rollouts
    (call,) = spy.calls  # one mini-batch, one micro-batch, rows in rollout order
    mask = call["mask"]
    sampler = padded([r.logprobs for r in rollouts], mask.size(1))
    start = logprobs_under(policy.ref, policy, rollouts)  # = the policy before the update
    # top-k 3 truncates the sampling distribution: sampler and trainer log-probs differ
    assert not masked_close(sampler, start, mask, atol=1e-2)
    assert masked_close(call["old"], sampler if mode == "sampler" else start, mask)
    assert masked_close(call["ref"], start, mask)


def test_a_truncated_sample_gets_no_gradient_with_overlong_masking(tmp_path, spy):
    """Edit caught: `rollout_batch` not applying `overlong_mask`."""
    cfg, policy, next_prompts = make_step(tmp_path, "grpo.mask_truncated=true", "grpo.beta=0.0")
    res = rl_step.rl_step(cfg, policy, next_prompts, 0, 2)
    truncated = torch.tensor([r.truncated for r in res.rollouts.rollouts])
    assert 0 < int(truncated.sum()) < len(truncated), "the setup needs both kinds of samples"
    (call,) = spy.calls
    grad = call["grad"]
    assert torch.all(grad[truncated] == 0)
    assert torch.any(grad[~truncated] != 0)


@pytest.mark.parametrize("mu,mini_batches", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_mu_passes_of_mini_batches_make_mu_times_m_optimizer_steps(tmp_path, mu, mini_batches):
    """Edits caught: ``range(g.mu)`` replaced by one pass; ``mini_batches`` ignored (one split);
    the schedule not stepped once per RL step."""
    cfg, policy, next_prompts = make_step(
        tmp_path, f"grpo.mu={mu}", f"grpo.mini_batches={mini_batches}"
    )
    steps = []
    policy.learner.optimizer.register_step_post_hook(lambda *_: steps.append(1))
    seen = []
    real_update = policy.learner.update
    policy.learner.update = lambda b, fn: seen.append(b.completion_ids) or real_update(b, fn)
    res = rl_step.rl_step(cfg, policy, next_prompts, 0, 2)
    assert len(steps) == mu * mini_batches == res.row["optimizer_steps"] == len(res.updates)
    # the warm-up counts RL steps (1 of 3 done), not the optimizer steps of the mini-batches
    assert res.row["lr"] == pytest.approx(cfg.grpo.lr * 2 / 3)
    everything = sorted(map(tuple, (r.completion_ids for r in res.rollouts.rollouts)))
    for p in range(mu):  # each pass's mini-batches are disjoint whole groups covering the batch
        one_pass = seen[p * mini_batches : (p + 1) * mini_batches]
        assert all(len(rows) == 8 // mini_batches for rows in one_pass)
        assert sorted(tuple(c) for rows in one_pass for c in rows) == everything


def test_the_clip_acts_from_the_second_mini_batch_on_and_never_with_one(tmp_path):
    """The first update is on-policy (trainer log-probs: ratio exactly 1); later mini-batches see
    the policy the earlier ones moved. Edit caught: `update_metrics` dropping the per-step
    values, or the old log-probs recomputed per mini-batch (every update on-policy)."""
    cfg, policy, next_prompts = make_step(
        tmp_path, "grpo.prompts_per_step=4", "grpo.mini_batches=4", "grpo.lr=0.1"
    )
    res = rl_step.rl_step(cfg, policy, next_prompts, 0, 4)
    clip = [u["clip_frac"] for u in res.updates]
    assert clip[0] == 0.0 and res.row["clip_frac/first"] == 0.0
    assert all(c > 0 for c in clip[1:]), clip
    assert res.row["clip_frac/last"] == clip[-1] and res.row["approx_kl/last"] > 0
    assert res.row["ratio_mean/first"] == pytest.approx(1.0, abs=1e-5)

    cfg, policy, next_prompts = make_step(
        tmp_path / "one", "grpo.prompts_per_step=4", "grpo.lr=0.1"
    )
    res = rl_step.rl_step(cfg, policy, next_prompts, 0, 4)
    assert [u["clip_frac"] for u in res.updates] == [0.0] and res.row["clip_frac"] == 0.0


def test_the_accuracy_metric_comes_from_the_accuracy_component():
    """Edit caught: ``accuracy`` (or ``format_rate``) read from the other component."""
    table = RewardTable(
        total=[1.5, 0.5, 0.5, 0.0],
        components={"accuracy": [1.0, 0.0, 0.0, 0.0], "format": [1.0, 1.0, 1.0, 0.0]},
        results={},
        errors={},
    )
    got = StepRollouts([], [], table, rounds=1, zero_variance_frac=0.0, generated=4)
    mask = torch.ones(4, 2)
    batch = TrainBatch([[1]] * 4, [[2, 3]] * 4, mask, torch.zeros(4, 2), torch.zeros(4, 2))
    row = rl_step.rollout_metrics(got, batch, torch.zeros(4, dtype=torch.bool))
    assert row["accuracy"] == 0.25 and row["format_rate"] == 0.75


if "t_right" not in REWARDS:

    @REWARDS.register("t_right")
    def t_right(c, **_):
        return RewardResult(float(c.text.startswith("right")))


def fake_generate(texts):
    def generate(prompts, G, sampling):
        return [
            Rollout(
                p, j, prompt, [1], [2, 3], texts[(p * G + j) % len(texts)], [-1.0, -1.0], "stop"
            )
            for p, prompt in enumerate(prompts)
            for j in range(G)
        ]

    return generate


@pytest.mark.parametrize("metric,kept", [("t_right", 0), ("reward", 2)])
def test_dynamic_sampling_filters_groups_on_the_named_component(metric, kept):
    """Every group's accuracy (t_right) is all 0 while its total reward differs (text_len): on
    accuracy no group is kept (DAPO), on the total reward every group is. Edit caught: the
    filter reading ``table.total`` whatever the metric."""
    ex = Example("0", "q", "a", "exact")
    spec = [RewardComponent("t_right", 1.0), RewardComponent("text_len", 1.0)]
    kw = dict(
        prompts_per_step=2, group_size=2, sampling=lambda r: None, max_new_tokens=2,
        dynamic_sampling=True, max_gen_rounds=1, filter_metric=metric,
    )  # fmt: skip
    gen = fake_generate(["wrong", "wrong, longer"])
    if kept == 0:
        with pytest.raises(Exception, match="differing t_right"):
            collect_step(gen, lambda n: [("p", ex)] * n, spec, **kw)
    else:
        got = collect_step(gen, lambda n: [("p", ex)] * n, spec, **kw)
        assert len(got.rollouts) == 4 and got.zero_variance_frac == 0.0


def test_reinforce_pp_gets_the_k1_kl_of_old_against_reference_in_its_rewards():
    """algorithms.md section 7 worked example (beta 0.1, OpenRLHF whitening) through the step's
    `advantages`. Edits caught: no ``kl_BT`` passed (raises), ``ref - old`` instead of
    ``old - ref``, the reference's log-probs in place of the old ones."""
    old = [[-1.0, -0.5], [-2.0, -1.0, -0.3], [-0.7], [-0.2, -1.5]]
    ref = [[-1.1, -0.4], [-1.9, -1.0, -0.5], [-0.7], [-0.3, -1.5]]
    mask = padded([[1.0] * len(r) for r in old], 3)
    batch = TrainBatch([[1]] * 4, [[2] * len(r) for r in old], mask, padded(old, 3), mask * 0)
    batch.ref_logp_BT = padded(ref, 3)
    cfg = load_config(
        RLConfig, "reinforce_pp_tiny", ["grpo.group_size=4", "grpo.adv_params={beta: 0.1}"]
    )
    adv = rl_step.advantages(cfg.grpo, [1.0, 0.0, 0.0, 1.0], batch)
    want = [
        [0.999884, 1.019635], [-0.994946, -1.014697, -1.014697], [-0.975196], [0.980133, 0.999884]
    ]  # fmt: skip
    assert masked_close(adv, padded(want, 3), mask, atol=1e-5)


@pytest.mark.parametrize("mini_batches", [1, 2])
def test_trainer_old_logprobs_come_from_the_update_when_a_step_makes_one(tmp_path, mini_batches):
    """One optimizer step per rollout batch: no scoring forward of the policy, old = the update's
    own log-probs (ratio exactly 1), the mismatch metrics still logged. Edits caught:
    `old_from_update` always true (mini-batch 2 would take its old from a moved policy) or always
    false (an extra policy forward); the loss's mismatch metrics dropped."""
    cfg, policy, next_prompts = make_step(tmp_path, f"grpo.mini_batches={mini_batches}")
    scored = []
    real = policy.learner.score
    policy.learner.score = lambda batch, *models: scored.append(models) or real(batch, *models)
    res = rl_step.rl_step(cfg, policy, next_prompts, 0, 2)
    (models,) = scored
    assert (models[0] is policy.model) == (mini_batches > 1)
    assert models[1] is policy.ref
    assert res.row["mismatch/abs_logp_diff"] < 1e-4  # the HF sampler: same distribution
    if mini_batches == 1:
        assert res.row["ratio_mean/first"] == 1.0
