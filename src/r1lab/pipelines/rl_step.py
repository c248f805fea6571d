"""One RL step of the GRPO family, top to bottom (`rl_step`): prompts -> rollouts -> rewards ->
log-probs -> advantages -> mini-batch updates -> metrics.

The formulas live in `r1lab.algo`; the helpers below only pick the pieces a config names and pass
tensors between them. `grpo.run` wraps the step with the data cursor, the agreement of ranks,
checkpoints, held-out evaluation and logging. Design and formulas: docs/rl_step.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from r1lab.algo import (
    IS_CORRECTIONS,
    KL_ESTIMATORS,
    compute_advantages,
    mismatch_metrics,
    overlong_mask,
    policy_objective,
)
from r1lab.engines.hf_learner import TrainBatch, padded, shuffled_mini_batches
from r1lab.errors import ConfigError
from r1lab.pipelines.rl_config import GRPOConfig, RLConfig
from r1lab.pipelines.rollouts import StepRollouts, check_filter_metric, collect_step
from r1lab.rewards.combine import check_error_rate
from r1lab.types import SamplingParams
from r1lab.utils import dist as rdist

# per-update metrics also logged for the first and the last optimizer step of a rollout batch
PER_UPDATE = ("clip_frac", "ratio_mean", "approx_kl")


@dataclass
class StepResult:
    row: dict[str, float]  # this rank's metrics row (grpo.run reduces it over ranks)
    rollouts: StepRollouts
    updates: list[dict[str, float]]  # the learner's metrics of each optimizer step, in order


def rl_step(cfg: RLConfig, policy, next_prompts: Callable, step: int, n_prompts: int) -> StepResult:
    """One step on this rank's `n_prompts` prompts (`next_prompts(n)` yields (text, example)
    pairs); `policy` is a `grpo_policy.Policy`. Every rank calls it with the same `step`."""
    g, t0 = cfg.grpo, time.time()
    # prompts -> G rollouts each -> rewards (dynamic sampling: more rounds until groups differ)
    got = rdist.agree(
        collect_step,
        policy.generator.generate,
        next_prompts,
        cfg.rewards,
        prompts_per_step=n_prompts,
        group_size=g.group_size,
        sampling=lambda rnd: sampling_params(cfg, step * 1000 + rnd),
        max_new_tokens=cfg.sampling.max_new_tokens,
        dynamic_sampling=g.dynamic_sampling,
        max_gen_rounds=g.max_gen_rounds,
        filter_metric=g.dynamic_sampling_metric,
    )
    rdist.agree(check_error_rate, got.table, g.reward_error_threshold, step)
    t_gen, t1 = time.time() - t0, time.time()
    # log-probs before any update: old (the trainer's or the sampler's), reference, IS weights
    batch, truncated = rollout_batch(got, mask_truncated=g.mask_truncated)
    policy.before_update()  # a colocated engine frees the GPU
    mismatch = score_batch(g, policy, batch)
    # advantages, batch-wide statistics over every rank (REINFORCE++: KL in the token rewards)
    batch.adv_BT = advantages(g, got.table.total, batch)
    # mu passes, each mini_batches optimizer steps over the rollout batch's shuffled groups
    loss_fn = objective(g, const_len=g.const_len or cfg.sampling.max_new_tokens)
    updates = [
        policy.learner.update(batch.select(idx), loss_fn)
        for p in range(g.mu)
        for idx in shuffled_mini_batches(
            len(batch), g.group_size, g.mini_batches, shuffle_rng(cfg.seed, step, p)
        )
    ]
    policy.sched.step()  # the learning-rate schedule counts RL steps, not optimizer steps
    policy.after_update()  # a colocated engine gets the new weights
    row = {
        **rollout_metrics(got, batch, truncated),
        "lr": policy.sched.get_last_lr()[0],
        **update_metrics(updates),
        **mismatch,
        "time/generate": t_gen,  # generation + scoring (scoring time: reward/time)
        "time/update": time.time() - t1,
        "tokens_per_second": sum(map(len, batch.completion_ids)) / max(t_gen, 1e-9),
    }
    return StepResult(row, got, updates)


def check_step_config(cfg: RLConfig) -> None:
    """Fail before any model is loaded on settings the step cannot combine."""
    g = cfg.grpo
    if g.is_correction != "off":
        IS_CORRECTIONS.get(g.is_correction)  # unknown names fail with the known ones
    groups = g.prompts_per_step // rdist.world_size()  # each rank's share of the groups
    if not (1 <= g.mini_batches <= groups and g.mu >= 1):
        raise ConfigError(
            f"grpo.mini_batches={g.mini_batches} must be between 1 and the prompt groups each "
            f"process updates on ({groups}), grpo.mu={g.mu} at least 1"
        )
    if g.dynamic_sampling:
        check_filter_metric(cfg.rewards, g.dynamic_sampling_metric)


def sampling_params(cfg: RLConfig, step: int) -> SamplingParams:
    return cfg.sampling.params(
        cfg.seed * 100_003 + step + rdist.rank() * 1_000_000_007
    )  # ranks: own streams


def shuffle_rng(seed: int, step: int, pass_: int) -> torch.Generator:
    """The mini-batch shuffle of pass `pass_` of `step`: a function of the three, so a resumed
    run shuffles as the uninterrupted one did."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 1_009 + pass_)


def rollout_batch(got: StepRollouts, *, mask_truncated: bool) -> tuple[TrainBatch, torch.Tensor]:
    """(batch, truncated (B,)): masks (DAPO overlong filtering: truncated rows zeroed) and the
    sampler's log-probs as old; advantages follow once the log-probs are known."""
    rollouts = got.rollouts
    T = max(1, max(len(r.completion_ids) for r in rollouts))
    mask = padded([[1.0] * len(r.completion_ids) for r in rollouts], T)
    truncated = torch.tensor([r.truncated for r in rollouts])
    if mask_truncated:
        mask = overlong_mask(mask, truncated)
    batch = TrainBatch(
        prompt_ids=[r.prompt_ids for r in rollouts],
        completion_ids=[r.completion_ids for r in rollouts],
        mask_BT=mask,
        old_logp_BT=padded([r.logprobs for r in rollouts], T),
        adv_BT=torch.zeros_like(mask),
    )
    return batch, truncated


def score_batch(g: GRPOConfig, policy, batch: TrainBatch) -> dict[str, float]:
    """One pass of the learner over the batch before the first update: the reference's log-probs
    (when there is a reference) and, with ``old_logprobs: trainer``, the policy's own, which
    replace the sampler's as old (unless `old_from_update`). With ``is_correction`` the
    truncated-IS weights of trainer vs sampler are set. Returns the sampler/trainer mismatch
    metrics (trainer mode only)."""
    own = policy.model if g.old_logprobs == "trainer" and not old_from_update(g) else None
    if own is not None:
        own.eval()
    trainer, batch.ref_logp_BT = policy.learner.score(batch, own, policy.ref)
    if trainer is None:
        return {}
    sampler, batch.old_logp_BT = batch.old_logp_BT, trainer
    batch.is_weight_BT, m = trainer_vs_sampler(g, trainer, sampler, batch.mask_BT)
    return {k: float(v) for k, v in m.items()}


def old_from_update(g: GRPOConfig) -> bool:
    """Trainer old log-probs taken from the update's own forward (no scoring pass): when a step
    makes one optimizer step, the policy has not moved when its loss is computed, so old =
    ``logp.detach()`` exactly (TRL does the same). Not with the KL in the reward, which needs old
    log-probs for the advantages."""
    return g.old_logprobs == "trainer" and g.mu * g.mini_batches == 1 and not kl_in_reward(g)


def trainer_vs_sampler(g: GRPOConfig, trainer, sampler, mask_BT):
    """(truncated-IS weights or None, mismatch metrics) of trainer vs sampler log-probs (B, T)."""
    weight = None
    if g.is_correction != "off":
        weight = IS_CORRECTIONS.get(g.is_correction)(trainer, sampler, mask_BT, cap=g.is_cap)
    return weight, mismatch_metrics(trainer, sampler, mask_BT, weight, cap=g.is_cap)


def kl_in_reward(g: GRPOConfig) -> bool:
    """REINFORCE++'s KL in the reward: the estimator's own ``adv_params.beta`` is set."""
    return float(g.adv_params.get("beta", 0.0)) != 0.0


def advantages(g: GRPOConfig, scores: list[float], batch: TrainBatch) -> torch.Tensor:
    """(B, T) advantages of ``g.adv_estimator`` with statistics over every rank's rows. With the
    KL in the reward, the estimator gets the per-token k1 of the old log-probs against the
    reference's (``kl_BT``, OpenRLHF / REINFORCE++)."""
    extra = {}
    if kl_in_reward(g):
        k1 = KL_ESTIMATORS.get("k1")(batch.old_logp_BT, batch.ref_logp_BT) * batch.mask_BT
        extra["kl_BT"] = rdist.gather_rows(k1)  # every rank's rows, as the mask below

    def estimate(s_B: torch.Tensor, m_BT: torch.Tensor) -> torch.Tensor:
        return compute_advantages(
            g.adv_estimator, s_B, m_BT, group_size=g.group_size, **g.adv_params, **extra
        )

    return rdist.on_global_batch(estimate, torch.tensor(scores, dtype=torch.float32), batch.mask_BT)


def objective(g: GRPOConfig, *, const_len: int):
    """The learner's loss function: `algo.policy_objective` with the recipe's pieces; with
    `old_from_update`, old log-probs (and IS weights, mismatch metrics) from this forward."""
    from_update = old_from_update(g)

    def loss_fn(logp, mb, *, entropy_BT, num_seqs, num_tokens):
        old, weight, extra = mb.old_logp_BT, mb.is_weight_BT, {}
        if from_update:  # mb.old_logp_BT holds the sampler's
            old = logp.detach()
            weight, extra = trainer_vs_sampler(g, old, mb.old_logp_BT, mb.mask_BT)
        loss, metrics = policy_objective(
            logp,
            old,
            mb.ref_logp_BT,
            mb.adv_BT,
            mb.mask_BT,
            loss=g.policy_loss,
            agg=g.loss_agg,
            kl=g.kl_estimator,
            beta=g.beta,
            eps_low=g.eps_low,
            eps_high=g.eps_high,
            num_seqs=num_seqs,
            num_tokens=num_tokens,
            const_len=const_len,
            entropy_BT=entropy_BT,
            token_weight_BT=weight,
        )
        return loss, {**metrics, **extra}

    return loss_fn


def rollout_metrics(got: StepRollouts, batch: TrainBatch, truncated: torch.Tensor) -> dict:
    table, n = got.table, len(batch)
    lengths = [len(c) for c in batch.completion_ids]
    return {
        **table.metrics(),
        "accuracy": sum(table.components.get("accuracy", [0.0])) / n,
        "format_rate": sum(table.components.get("format", [0.0])) / n,
        "response_len_mean": sum(lengths) / n,
        "response_len_max": max(lengths),
        "truncation_rate": float(truncated.float().mean()),
        "zero_variance_frac": got.zero_variance_frac,
        "empty_response_frac": float((batch.mask_BT.sum(-1) == 0).float().mean()),
        "reward_error_rate": table.error_rate(),
        "gen_rounds": got.rounds,
        "reward_errors": table.num_errors,
    }


def update_metrics(updates: list[dict[str, float]]) -> dict[str, float]:
    """One row from the learner's metrics of each optimizer step: ``*_max`` keys the max,
    ``*_min`` the min, ``skipped_nonfinite`` the count, every other key the plain mean over the
    steps; `PER_UPDATE` keys also as ``KEY/first`` and ``KEY/last`` (the first and the last
    optimizer step: with trainer old log-probs the first is on-policy, ratio exactly 1)."""
    out: dict[str, float] = {"optimizer_steps": float(len(updates))}
    for k in updates[0]:
        vals = [u[k] for u in updates if k in u]
        if k.endswith("_max"):
            out[k] = max(vals)
        elif k.endswith("_min"):
            out[k] = min(vals)
        elif k == "skipped_nonfinite":
            out[k] = float(sum(vals))
        else:
            out[k] = sum(vals) / len(vals)
    for k in PER_UPDATE:
        if k in updates[0]:
            out[f"{k}/first"], out[f"{k}/last"] = updates[0][k], updates[-1][k]
    return out
