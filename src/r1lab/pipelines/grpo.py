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

from r1lab.algo import compute_advantages, overlong_mask, policy_objective
from r1lab.doctor import RunDoctor
from r1lab.engines.hf import HFGenerator
from r1lab.engines.hf_learner import HFLearner, TrainBatch, padded
from r1lab.pipelines.common import (
    load_model,
    make_run_dir,
    prompts_for,
    seed_everything,
    task_examples,
)
from r1lab.pipelines.rl_config import RLConfig
from r1lab.pipelines.rollouts import collect_step
from r1lab.rewards.combine import check_error_rate, check_spec
from r1lab.types import SamplingParams
from r1lab.utils.jsonl import JsonlWriter
from r1lab.utils.progress import progress_bar


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
    cursor = 0

    def next_prompts(n: int) -> list[tuple[str, object]]:
        nonlocal cursor
        idx = [order[(cursor + i) % len(order)] for i in range(n)]
        cursor += n
        return [(prompts[i], train[i]) for i in idx]

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
    with (
        JsonlWriter(run_dir / "metrics.jsonl", "w") as metrics_log,
        JsonlWriter(run_dir / "samples.jsonl", "w") as samples_log,
        progress_bar("rl", g.steps, cfg.progress) as advance,
        RunDoctor(cfg.doctor, log=log).recording(run_dir) as doctor,
    ):
        for step in range(g.steps):
            t0 = time.time()
            got = collect_step(
                generator.generate,
                next_prompts,
                cfg.rewards,
                prompts_per_step=g.prompts_per_step,
                group_size=g.group_size,
                sampling=lambda rnd, step=step: sampling_params(cfg, step * 1000 + rnd),
                max_new_tokens=cfg.sampling.max_new_tokens,
                dynamic_sampling=g.dynamic_sampling,
                max_gen_rounds=g.max_gen_rounds,
            )
            rollouts, completions, table = got.rollouts, got.completions, got.table
            check_error_rate(table, g.reward_error_threshold, step)
            t_gen = time.time() - t0  # generation + scoring (scoring time: reward/time)

            t2 = time.time()
            lengths = [len(r.completion_ids) for r in rollouts]
            T = max(1, max(lengths))
            mask = padded([[1.0] * len(r.completion_ids) for r in rollouts], T)
            truncated = torch.tensor([r.truncated for r in rollouts])
            if g.mask_truncated:  # DAPO overlong filtering
                mask = overlong_mask(mask, truncated)
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

            row = {
                "step": step,
                **table.metrics(),
                "accuracy": sum(table.components.get("accuracy", [0.0])) / len(rollouts),
                "format_rate": sum(table.components.get("format", [0.0])) / len(rollouts),
                "response_len_mean": sum(lengths) / len(lengths),
                "response_len_max": max(lengths),
                "truncation_rate": float(truncated.float().mean()),
                "zero_variance_frac": got.zero_variance_frac,
                "empty_response_frac": float((mask.sum(-1) == 0).float().mean()),
                "reward_error_rate": table.error_rate(),
                "gen_rounds": got.rounds,
                "reward_errors": table.num_errors,
                "lr": sched.get_last_lr()[0],
                **upd,
                "time/generate": t_gen,
                "time/update": t_update,
                "tokens_per_second": sum(lengths) / max(t_gen, 1e-9),
                "elapsed": time.time() - t_start,
            }
            history.append(row)
            metrics_log.write(row)
            for r, c, total in zip(
                rollouts[: g.group_size], completions, table.total, strict=False
            ):
                samples_log.write(
                    {
                        "step": step,
                        "question": c.row["question"],
                        "answer": c.row["answer"],
                        "completion": r.text,
                        "reward": total,
                    }
                )
            doctor.observe(row)  # warns; raises TrainingStopped when training cannot learn
            advance(
                info=f"reward {row['reward']:.2f} acc {row['accuracy']:.2f} "
                f"fmt {row['format_rate']:.2f} len {row['response_len_mean']:.0f}"
            )
    log(doctor.report().summary())
    ckpt = run_dir / "checkpoint"
    model.save_pretrained(ckpt)
    tokenizer.save_pretrained(ckpt)
    return RLResult(run_dir, ckpt, history, time.time() - t_start)


def with_overrides(cfg: RLConfig, **sections) -> RLConfig:
    return replace(cfg, **sections)
