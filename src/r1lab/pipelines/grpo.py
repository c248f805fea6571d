"""GRPO-family RL from verifiable rewards (R1-Zero, reasoning RL, all-scenario RL).

The loop, in reading order: sample G completions per prompt with the current policy -> score
them with the rule-based reward spec -> advantages (algo/) -> `mu` policy updates against the
sampling policy's log-probs with the clipped objective and the KL to a frozen reference (algo/) ->
metrics. The formulas live in `r1lab.algo`; this file only wires the pieces.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from r1lab.algo import compute_advantages, policy_objective
from r1lab.engines.hf import HFGenerator
from r1lab.engines.hf_learner import HFLearner, TrainBatch, padded
from r1lab.errors import R1LabError
from r1lab.pipelines.common import (
    load_model,
    make_run_dir,
    prompts_for,
    seed_everything,
    task_examples,
)
from r1lab.pipelines.rl_config import RLConfig
from r1lab.rewards.base import Completion
from r1lab.rewards.combine import check_spec, score_completions
from r1lab.types import SamplingParams
from r1lab.utils.jsonl import JsonlWriter
from r1lab.utils.progress import progress_bar


class RewardFailure(R1LabError):
    """Too many reward calls failed: training on those scores would be training on garbage."""


@dataclass
class RLResult:
    run_dir: Path
    checkpoint: Path
    metrics: list[dict]
    wall_seconds: float


def sampling_params(cfg: RLConfig, step: int) -> SamplingParams:
    s = cfg.sampling
    return SamplingParams(
        temperature=s.temperature,
        top_p=s.top_p,
        top_k=s.top_k,
        max_new_tokens=s.max_new_tokens,
        stop=s.stop,
        seed=cfg.seed * 100_003 + step,
    )


def make_optimizer(model, g) -> tuple[torch.optim.Optimizer, object]:
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=g.lr, weight_decay=g.weight_decay
    )
    warm = max(1, g.warmup_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / warm))
    return opt, sched


def run(cfg: RLConfig, *, run_dir: Path | None = None, model=None, tokenizer=None, log=print):
    """Train; returns an `RLResult`. `model`/`tokenizer` may be passed in (the demo does)."""
    t_start = time.time()
    g = cfg.grpo
    check_spec(cfg.rewards)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    train = task_examples(cfg.data, "train")  # bad data fails before any model is loaded
    run_dir = run_dir or make_run_dir(cfg.output_dir, cfg.run_name, "rl", cfg)
    if model is None:
        model, tokenizer = load_model(
            cfg.model.path, pretrain_cfg=cfg.pretrain, dtype=cfg.model.dtype, log=log
        )
    ref = None
    if g.beta > 0:  # beta = 0 loads no reference model
        ref = copy.deepcopy(model).eval().requires_grad_(False)
    prompts = prompts_for(train, cfg.data.template, tokenizer)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
    generator = HFGenerator(model, tokenizer, batch_size=cfg.sampling.batch_size)
    opt, sched = make_optimizer(model, g)
    learner = HFLearner(
        model,
        opt,
        sched,
        pad_id=generator.pad_id,
        micro_batch_size=g.micro_batch_size,
        max_grad_norm=g.max_grad_norm,
        temperature=cfg.sampling.temperature,
    )
    const_len = g.const_len or cfg.sampling.max_new_tokens
    history: list[dict] = []
    cursor = 0
    with (
        JsonlWriter(run_dir / "metrics.jsonl", "w") as metrics_log,
        JsonlWriter(run_dir / "samples.jsonl", "w") as samples_log,
        progress_bar("rl", g.steps, cfg.progress) as advance,
    ):
        for step in range(g.steps):
            t0 = time.time()
            idx = [order[(cursor + i) % len(order)] for i in range(g.prompts_per_step)]
            cursor += g.prompts_per_step
            rollouts = generator.generate(
                [prompts[i] for i in idx], g.group_size, sampling_params(cfg, step)
            )
            t_gen = time.time() - t0

            t1 = time.time()
            completions = [
                Completion(
                    text=r.text,
                    row=train[idx[r.prompt_index]].as_row(),
                    num_tokens=len(r.completion_ids),
                    truncated=r.truncated,
                    max_tokens=cfg.sampling.max_new_tokens,
                )
                for r in rollouts
            ]
            table = score_completions(cfg.rewards, completions)
            if table.error_rate() > g.reward_error_threshold:
                raise RewardFailure(
                    f"step {step}: {table.error_rate():.0%} of reward calls failed "
                    f"(threshold {g.reward_error_threshold:.0%}); errors per component: "
                    f"{table.errors}"
                )
            t_reward = time.time() - t1

            t2 = time.time()
            T = max(1, max(len(r.completion_ids) for r in rollouts))
            mask = padded([[1.0] * len(r.completion_ids) for r in rollouts], T)
            scores = torch.tensor(table.total, dtype=torch.float32)
            adv = compute_advantages(
                g.adv_estimator, scores, mask, group_size=g.group_size, **g.adv_params
            )
            batch = TrainBatch(
                prompt_ids=[r.prompt_ids for r in rollouts],
                completion_ids=[r.completion_ids for r in rollouts],
                mask_BT=mask,
                old_logp_BT=padded([r.logprobs for r in rollouts], T),
                adv_BT=adv,
            )
            if ref is not None:
                batch.ref_logp_BT = learner.logprobs(ref, batch)

            def loss_fn(logp, mb, *, entropy_BT, num_seqs, num_tokens):
                return policy_objective(
                    logp,
                    mb.old_logp_BT,
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
                )

            upd: dict[str, float] = {}
            for _ in range(g.mu):
                upd = learner.update(batch, loss_fn)
            t_update = time.time() - t2

            lengths = [len(r.completion_ids) for r in rollouts]
            row = {
                "step": step,
                "reward": sum(table.total) / len(table.total),
                **{f"reward/{k}": sum(v) / len(v) for k, v in table.components.items()},
                "accuracy": sum(table.components.get("accuracy", [0.0])) / len(rollouts),
                "format_rate": sum(table.components.get("format", [0.0])) / len(rollouts),
                "response_len_mean": sum(lengths) / len(lengths),
                "response_len_max": max(lengths),
                "truncation_rate": sum(r.truncated for r in rollouts) / len(rollouts),
                "reward_errors": table.num_errors,
                "lr": sched.get_last_lr()[0],
                **upd,
                "time/generate": t_gen,
                "time/reward": t_reward,
                "time/update": t_update,
                "tokens_per_second": sum(lengths) / max(t_gen, 1e-9),
                "elapsed": time.time() - t_start,
            }
            history.append(row)
            metrics_log.write(row)
            for r, c, total in zip(rollouts[: g.group_size], completions, table.total):
                samples_log.write(
                    {
                        "step": step,
                        "question": c.row["question"],
                        "answer": c.row["answer"],
                        "completion": r.text,
                        "reward": total,
                    }
                )
            advance(
                info=f"reward {row['reward']:.2f} acc {row['accuracy']:.2f} "
                f"fmt {row['format_rate']:.2f} len {row['response_len_mean']:.0f}"
            )
    ckpt = run_dir / "checkpoint"
    model.save_pretrained(ckpt)
    tokenizer.save_pretrained(ckpt)
    return RLResult(run_dir, ckpt, history, time.time() - t_start)


def with_overrides(cfg: RLConfig, **sections) -> RLConfig:
    return replace(cfg, **sections)
