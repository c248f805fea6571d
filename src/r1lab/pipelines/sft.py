"""Supervised fine-tuning on chat / prompt-completion data (R1 cold start, stage-3 SFT, distillation).

The loop, in reading order: read rows -> render with the chat template and mask the loss to the
assistant tokens (`data.chat`) -> hold out an eval split -> per epoch, shuffle and group samples
into token-budget batches -> pack each batch into one padding-free row (`sft_batching`) ->
token-mean NLL (`algo.nll_token_mean`) by the `Learner` (full weights or ``lora.*`` adapters),
AdamW, warm-up + `transformers` LR schedule -> held-out eval loss -> checkpoints. Under torchrun
(DDP, or FSDP2 with ``dist.fsdp``) each rank takes every world-th sample of a step and the loss
divides by the step's global target-token count: N processes take one process's step.

Resumable (`utils.checkpoint`, as RL): every ``save_every`` steps a checkpoint holds the weights,
optimizer, scheduler, RNG and metrics so far; the batch order is a function of (seed, epoch), so
a run killed at any point continues with exactly the batches it had not done. A run directory
whose final checkpoint is complete is not trained again.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from r1lab.algo import nll_token_mean
from r1lab.data.chat import LoadStats, SFTSample, read_sft_rows, tokenize_rows
from r1lab.engines.hf_learner import Learner, adamw
from r1lab.errors import ConfigError, DataError
from r1lab.models.lora import apply_lora, save_lora_run
from r1lab.pipelines.common import load_model, make_run_dir, seed_everything
from r1lab.pipelines.sft_batching import SFTBatch, collate, plan_batches, target_logprobs
from r1lab.pipelines.sft_config import SCHEDULES, SFTConfig
from r1lab.utils import dist as rdist
from r1lab.utils.checkpoint import RunCheckpoints, atomic_dir, latest_checkpoint, set_rng_state
from r1lab.utils.jsonl import JsonlWriter
from r1lab.utils.progress import progress_bar

STATE = "r1lab_state.json"


@dataclass
class SFTResult:
    run_dir: Path
    checkpoint: Path
    metrics: list[dict]
    eval_loss: float | None
    steps: int
    wall_seconds: float
    data: dict = field(default_factory=dict)


def split_rows(rows: list, fraction: float, seed: int, cap: int) -> tuple[list, list]:
    """(train, held-out): a seeded ``fraction`` of the rows (at least 1 when there are >= 2)."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"data.eval_fraction must be in [0, 1), got {fraction}")
    n_eval = min(cap, math.ceil(fraction * len(rows))) if len(rows) >= 2 and fraction > 0 else 0
    idx = list(range(len(rows)))
    random.Random(f"sft-split:{seed}").shuffle(idx)
    held = set(idx[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [
        r for i, r in enumerate(rows) if i in held
    ]


def load_data(cfg: SFTConfig, tokenizer) -> tuple[list[SFTSample], list[SFTSample], dict]:
    d = cfg.data
    if not d.train_file:
        raise ConfigError("data.train_file is required: a JSONL/Parquet file or hf:NAME[:split]")
    rows = read_sft_rows(d.train_file)
    if d.eval_file:
        train_rows, eval_rows = rows, read_sft_rows(d.eval_file)[: d.eval_max_samples]
    else:
        train_rows, eval_rows = split_rows(rows, d.eval_fraction, cfg.seed, d.eval_max_samples)
    stats = LoadStats()
    kw = {"prompt_format": d.prompt_format, "max_len": d.max_len}
    train = tokenize_rows(train_rows, tokenizer, stats=stats, **kw)
    held = tokenize_rows(eval_rows, tokenizer, **kw)
    if not train:
        raise DataError(f"{d.train_file}: no training sample has an assistant token to learn")
    return train, held, {**stats.__dict__, "eval_samples": len(held)}


def epoch_batches(samples: list[SFTSample], cfg: SFTConfig) -> list[tuple[int, list[int]]]:
    """Every optimizer step's (epoch, sample indices), deterministic in (seed, epoch)."""
    lengths = [len(s.input_ids) for s in samples]
    plan = []
    for epoch in range(cfg.train.epochs):
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        order = torch.randperm(len(samples), generator=gen).tolist()
        plan += [(epoch, b) for b in plan_batches(lengths, order, cfg.train.batch_tokens)]
    if cfg.train.max_steps > 0:
        plan = plan[: cfg.train.max_steps]
    return plan


@torch.no_grad()
def eval_loss(model, samples: list[SFTSample], cfg: SFTConfig, pad_id: int) -> float | None:
    """Token-mean NLL of the held-out samples' assistant tokens (None without held-out data)."""
    if not samples:
        return None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0.0
    lengths = [len(s.input_ids) for s in samples]
    for b in plan_batches(lengths, range(len(samples)), cfg.train.batch_tokens):
        batch = collate([samples[i] for i in b], packing=cfg.train.packing, pad_id=pad_id)
        logp = target_logprobs(model, batch)
        total += float(-(logp * batch.mask.to(logp.device)).sum())
        count += batch.num_targets
    model.train(was_training)
    return total / max(count, 1.0)


def schedule(cfg: SFTConfig, total_steps: int):
    """``optimizer -> `transformers` LR schedule`` of ``train.schedule`` with its warm-up."""
    from transformers import get_scheduler

    t = cfg.train
    if t.schedule not in SCHEDULES:
        raise ConfigError(f"train.schedule {t.schedule!r} unknown; known: {', '.join(SCHEDULES)}")
    return lambda opt: get_scheduler(
        t.schedule,
        opt,
        num_warmup_steps=int(t.warmup_ratio * total_steps),
        num_training_steps=total_steps,
        scheduler_specific_kwargs=dict(t.schedule_params) or None,
    )


def nll_loss(logp, mb: SFTBatch, *, num_tokens: float, **_):
    """`Learner.update`'s loss: the token-mean NLL over the step's (global) target tokens."""
    return nll_token_mean(logp, mb.mask_BT, num_tokens=num_tokens)


def rank_share(samples: list[SFTSample], packing: bool, pad_id: int) -> SFTBatch:
    """This rank's samples of a step (every world-th). A rank left without one runs the step's
    first sample with its loss mask zeroed: it must still take part in the gradient reduction."""
    mine = samples[rdist.rank() :: rdist.world_size()]
    batch = collate(mine or samples[:1], packing=packing, pad_id=pad_id)
    if not mine:
        batch.mask.zero_()
    return batch


def finished(run_dir: Path) -> dict | None:
    """The summary of a completed SFT run in ``run_dir``, else None."""
    state = run_dir / "checkpoint" / STATE
    if state.exists() and json.loads(state.read_text()).get("complete"):
        return json.loads((run_dir / "sft_summary.json").read_text())
    return None


def run(cfg: SFTConfig, **kwargs) -> SFTResult:
    """Train; returns an `SFTResult`. `run_dir`, `model`/`tokenizer` (pipelines pass them) and
    `log` are keywords. Under torchrun it joins (or reuses) the process group."""
    with rdist.process_group(cfg.dist.backend, cfg.dist.timeout_s):
        return _run(cfg, **kwargs)


def _run(cfg: SFTConfig, *, run_dir: Path | None = None, model=None, tokenizer=None, log=print):
    t_start = time.time()
    main = rdist.is_main()
    log = log if main else (lambda *_: None)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    if run_dir is None and main:
        run_dir = make_run_dir(cfg.output_dir, cfg.run_name, "sft", cfg)
    run_dir = rdist.broadcast_object(run_dir)
    done = finished(run_dir) if cfg.resume else None
    if done is not None:
        log(f"[sft] {run_dir} already finished ({done['steps']} steps); not training again")
        ckpt, d = run_dir / "checkpoint", done
        return SFTResult(run_dir, ckpt, d["metrics"], d["eval_loss"], d["steps"], 0.0, d["data"])
    if model is None:
        model, tokenizer = load_model(
            cfg.model.path,
            pretrain_cfg=cfg.pretrain,
            dtype=cfg.model.dtype,
            device=cfg.model.device,
            log=log,
        )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    train, held, data_stats = load_data(cfg, tokenizer)
    plan = epoch_batches(train, cfg)
    t, lc, lora_model = cfg.train, cfg.lora, None
    if lc.enabled:  # adapters train, base frozen; `model` is the adapter-injected model
        lora_model = apply_lora(
            model, r=lc.r, alpha=lc.alpha, dropout=lc.dropout, target_modules=lc.target_modules
        )
        model = lora_model.get_base_model()
    make = adamw(t.lr, t.weight_decay, schedule=schedule(cfg, len(plan)))
    learner = Learner(model, make, fsdp=cfg.dist.fsdp, max_grad_norm=t.max_grad_norm)
    ckpts = RunCheckpoints(run_dir, t.save_every, t.keep_checkpoints, fresh=not cfg.resume)
    ck = None
    if cfg.resume and latest_checkpoint(ckpts.root) is not None:
        ck = ckpts.restore(
            learner, learner.scheduler, order=plan, total_steps=len(plan), what="train.max_steps"
        )
        log(f"[sft] resuming from {ck.path} at step {ck.steps_done}/{len(plan)}")
    start, history = (ck.steps_done, ck.state["history"]) if ck else (0, [])
    log(
        f"[sft] {data_stats['samples']} train samples ({data_stats['target_tokens']} target "
        f"tokens), {len(held)} held out; {len(plan)} steps over {t.epochs} epochs"
    )
    eval_steps = _eval_steps(plan, t.eval_every)
    model.train()
    with (
        JsonlWriter(run_dir / "metrics.jsonl", "w") if main else nullcontext() as metrics_log,
        progress_bar("sft", len(plan), cfg.progress and main) as advance,
    ):
        write = metrics_log.write if main else (lambda row: None)
        for row in history:
            write(row)
        advance(start)
        if start == 0:
            history.append(
                {"step": 0, "epoch": 0, "eval_loss": eval_loss(model, held, cfg, pad_id)}
            )
            write(history[-1])
        if ck:
            set_rng_state(ck.state["rng"][rdist.rank()])
        for step in range(start, len(plan)):
            t0 = time.time()
            epoch, idx = plan[step]
            samples = [train[i] for i in idx]
            batch = collate(samples, packing=t.packing, pad_id=pad_id)
            mine = batch if rdist.world_size() == 1 else rank_share(samples, t.packing, pad_id)
            row = {"step": step + 1, "epoch": epoch, **learner.update(mine, nll_loss)}
            learner.scheduler.step()
            row |= {
                "lr": learner.scheduler.get_last_lr()[0],
                "samples": batch.num_samples,
                "tokens": int(batch.input_ids.numel()),
                "target_tokens": batch.num_targets,
                "tokens_per_second": batch.input_ids.numel() / max(time.time() - t0, 1e-9),
            }
            if step + 1 in eval_steps:
                row["eval_loss"] = eval_loss(model, held, cfg, pad_id)
            history.append(row)
            write(row)
            info = f"loss {row['loss']:.3f}"
            advance(info=info if "eval_loss" not in row else f"{info} eval {row['eval_loss']:.3f}")
            if t.save_every and (step + 1) % t.save_every == 0 and step + 1 < len(plan):
                ckpts.save(
                    step + 1, learner, learner.scheduler, {"order": plan, "history": history}
                )
    final_eval = next((r["eval_loss"] for r in reversed(history) if "eval_loss" in r), None)
    summary = {"steps": len(plan), "eval_loss": final_eval, "data": data_stats, "metrics": history}
    ckpt = run_dir / "checkpoint"
    if main:
        (run_dir / "sft_summary.json").write_text(json.dumps(summary, indent=1, default=float))
        with atomic_dir(ckpt) as tmp:
            if lora_model is not None:  # merged weights + tmp/adapter/
                save_lora_run(lora_model, tokenizer, tmp)
            else:
                model.save_pretrained(tmp)
                tokenizer.save_pretrained(tmp)
            state = {"stage": "sft", "step": len(plan), "complete": True}
            (tmp / STATE).write_text(json.dumps(state, indent=1))
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    log(f"[sft] done: {len(plan)} steps, held-out loss {final_eval}, checkpoint {ckpt}")
    wall = time.time() - t_start
    return SFTResult(run_dir, ckpt, history, final_eval, len(plan), wall, data_stats)


def _eval_steps(plan: list[tuple[int, list[int]]], every: int) -> set[int]:
    """Steps (1-based, after the update) that end with a held-out eval."""
    if every > 0:
        steps = set(range(every, len(plan) + 1, every))
    else:  # end of every epoch
        steps = {
            i + 1 for i in range(len(plan)) if i + 1 == len(plan) or plan[i + 1][0] != plan[i][0]
        }
    return steps | {len(plan)}
