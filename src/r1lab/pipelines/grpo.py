"""GRPO-family RL from verifiable rewards (R1-Zero, reasoning RL, all-scenario RL).

`run` is the training run around the step: the data cursor, the process group, resume and
checkpoints, held-out evaluation, the run doctor and logging. The step itself (prompts ->
rollouts -> rewards -> advantages -> mini-batch updates -> metrics) is `rl_step.rl_step`; the
formulas live in `r1lab.algo`. Design: docs/rl_step.md.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from r1lab.config import to_dict
from r1lab.doctor import RunDoctor
from r1lab.engines.vllm import require_vllm
from r1lab.pipelines.common import (
    load_model,
    make_run_dir,
    prompts_for,
    seed_everything,
    task_examples,
)
from r1lab.pipelines.grpo_policy import build_policy
from r1lab.pipelines.heldout import evaluate_model
from r1lab.pipelines.rl_config import RLConfig
from r1lab.pipelines.rl_step import check_step_config, rl_step
from r1lab.rewards.combine import check_spec
from r1lab.utils import dist as rdist
from r1lab.utils.checkpoint import RunCheckpoints, resumable_run_dir, set_rng_state
from r1lab.utils.progress import progress_bar
from r1lab.utils.tracking import Tracker


@dataclass
class RLResult:
    run_dir: Path
    checkpoint: Path
    metrics: list[dict]
    wall_seconds: float


def run(cfg: RLConfig, **kwargs) -> RLResult:
    """Train; returns an `RLResult`. Under torchrun every rank runs this (DDP, or FSDP2 with
    ``dist.fsdp``): each generates its share of the step's prompt groups, rank 0 writes files."""
    with rdist.process_group(cfg.dist.backend, cfg.dist.timeout_s):
        return _run(cfg, **kwargs)


def _run(cfg: RLConfig, *, run_dir=None, model=None, tokenizer=None, log=print, resume=None):
    """`model`/`tokenizer` may be passed in (the demo does); `resume`: True or a run directory
    continues from its last complete checkpoint (utils/checkpoint.py)."""
    t_start = time.time()
    log = log if rdist.is_main() else (lambda *_: None)
    g = cfg.grpo
    check_spec(cfg.rewards)
    if cfg.rollout.engine == "vllm":
        require_vllm()  # no vLLM or no GPU: one line, before any model is loaded
    check_step_config(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    train = task_examples(cfg.data, "train")  # bad data fails before any model is loaded
    if resume:
        run_dir = resumable_run_dir(cfg, run_dir or resume)
    if run_dir is None and rdist.is_main():
        run_dir = make_run_dir(cfg.output_dir, cfg.run_name, "rl", cfg)
    run_dir = rdist.broadcast_object(run_dir)
    if model is None:
        model, tokenizer = load_model(
            cfg.model.path,
            pretrain_cfg=cfg.pretrain,
            dtype=cfg.model.dtype,
            device=cfg.model.device,
            log=log,
        )
    policy = build_policy(cfg, model, tokenizer, run_dir)
    learner = policy.learner

    prompts = prompts_for(train, cfg.data.template, tokenizer)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
    cursor = 0
    share = rdist.shard_slice(g.prompts_per_step, "grpo.prompts_per_step")  # this rank's groups

    def next_prompts(n: int) -> list[tuple[str, object]]:
        nonlocal cursor  # counts the prompts of ALL ranks; each rank takes its slice
        idx = [order[(cursor + i) % len(order)] for i in range(share.start, share.stop)]
        cursor += g.prompts_per_step
        return [(prompts[i], train[i]) for i in idx]

    c = cfg.checkpoint
    ckpts = RunCheckpoints(run_dir, c.every_steps, c.keep_last, fresh=not resume)
    ck = ckpts.restore(learner, policy.sched, order=order, total_steps=g.steps) if resume else None
    start, cursor = (ck.steps_done, ck.state["cursor"]) if ck else (0, 0)
    if ck:  # a colocated engine started from the pre-resume weights
        policy.after_update()
    doctor = RunDoctor(cfg.doctor, log=log)
    with (
        Tracker(run_dir, cfg.logging, config=to_dict(cfg), resumed=ck) as tracker,
        progress_bar("rl", g.steps - start, cfg.progress and rdist.is_main()) as advance,
        doctor.recording(run_dir) if rdist.is_main() else nullcontext(),
    ):
        history = rdist.broadcast_object(tracker.rows)  # resume: the rows of the done steps
        for row in history:  # the doctor's state (streaks, counts) is a function of the rows
            doctor.observe(row)
        if ck:
            set_rng_state(ck.state["rng"][rdist.rank()])
        for step in range(start, g.steps):
            res = rl_step(cfg, policy, next_prompts, step, share.stop - share.start)
            cursor = max(rdist.gather_objects(cursor))  # dynamic sampling: ranks' rounds differ
            row = {"step": step, **res.row, "elapsed": time.time() - t_start}
            row = rdist.reduce_rows(row)  # the same row on every rank (so the same doctor verdict)
            if step == 0 and getattr(train, "skipped", 0):  # data.skip_bad_rows
                row["data/skipped_rows"] = train.skipped
            if cfg.eval.every and (step + 1) % cfg.eval.every == 0 and rdist.is_main():
                row |= _heldout(cfg, policy, run_dir, step + 1)
            history.append(row)
            tracker.metric(row)
            got = res.rollouts
            tracker.samples(
                {"step": step, "question": c.row["question"], "answer": c.row["answer"]}
                | {"completion": r.text, "reward": total}
                for r, c, total in zip(
                    got.rollouts[: g.group_size], got.completions, got.table.total, strict=False
                )
            )
            doctor.observe(row)  # warns; raises TrainingStopped when training cannot learn
            if ckpts.due(step + 1, g.steps):
                ckpts.save(
                    step + 1,
                    learner,
                    policy.sched,
                    {"cursor": cursor, "order": order, **tracker.state()},
                )
            advance(
                info=f"reward {row['reward']:.2f} acc {row['accuracy']:.2f} "
                f"fmt {row['format_rate']:.2f} len {row['response_len_mean']:.0f}"
            )
    log(doctor.report().summary())
    ckpt = run_dir / "checkpoint"  # plain HF directory; LoRA: adapters merged, + ckpt/adapter/
    if not rdist.is_main():
        return RLResult(run_dir, ckpt, history, time.time() - t_start)
    policy.save(ckpt)
    return RLResult(run_dir, ckpt, history, time.time() - t_start)


def _heldout(cfg: RLConfig, policy, run_dir: Path, steps_done: int) -> dict[str, float]:
    """Held-out pass@1, cons@k and format rate of the current policy (``eval.every``)."""
    test = task_examples(cfg.data, "test")
    out = run_dir / "heldout" / f"step-{steps_done:06d}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    m = evaluate_model(cfg, policy.model, policy.tokenizer, test, out, cfg.seed).metrics
    k = cfg.eval.k
    return {
        "heldout_pass@1": m["pass@1"],
        f"heldout_cons@{k}": m[f"cons@{k}"],
        "heldout_format_rate": m["format_rate"],
    }


def with_overrides(cfg: RLConfig, **sections) -> RLConfig:
    return replace(cfg, **sections)
