"""Supervised fine-tuning on chat / prompt-completion data (R1 cold start, stage-3 SFT, distillation).

The loop, in reading order: read rows -> render with the chat template and mask the loss to the
assistant tokens (`data.chat`) -> hold out an eval split -> per epoch, shuffle and group samples
into token-budget batches -> pack each batch into one padding-free row (`sft_batching`) ->
token-mean NLL, AdamW, warm-up + `transformers` LR schedule -> held-out eval loss -> checkpoints.

Resumable: every ``save_every`` steps a checkpoint holds the weights, optimizer, scheduler and step;
the batch order is a function of (seed, epoch), so a restarted run continues with exactly the
batches it had not done. A run directory whose final checkpoint is complete is not trained again.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from r1lab.data.chat import LoadStats, SFTSample, read_sft_rows, tokenize_rows
from r1lab.errors import ConfigError, DataError
from r1lab.pipelines.common import load_model, make_run_dir, seed_everything
from r1lab.pipelines.sft_batching import batch_loss, collate, plan_batches, target_logprobs
from r1lab.pipelines.sft_config import SCHEDULES, SFTConfig
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


def make_optimizer(model, cfg: SFTConfig, total_steps: int):
    from transformers import get_scheduler

    t = cfg.train
    if t.schedule not in SCHEDULES:
        raise ConfigError(f"train.schedule {t.schedule!r} unknown; known: {', '.join(SCHEDULES)}")
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=t.lr, weight_decay=t.weight_decay
    )
    sched = get_scheduler(
        t.schedule,
        opt,
        num_warmup_steps=int(t.warmup_ratio * total_steps),
        num_training_steps=total_steps,
        scheduler_specific_kwargs=dict(t.schedule_params) or None,
    )
    return opt, sched


def save_checkpoint(path: Path, model, tokenizer, state: dict, trainer: dict | None) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if trainer is not None:
        torch.save(trainer, tmp / "trainer_state.pt")
    (tmp / STATE).write_text(json.dumps(state, indent=1))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)  # a killed save never leaves a half-written checkpoint behind


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted((run_dir / "checkpoints").glob("step-*/trainer_state.pt"))
    return found[-1].parent if found else None


def finished(run_dir: Path) -> dict | None:
    """The summary of a completed SFT run in ``run_dir``, else None."""
    state = run_dir / "checkpoint" / STATE
    if state.exists() and json.loads(state.read_text()).get("complete"):
        return json.loads((run_dir / "sft_summary.json").read_text())
    return None


def run(cfg: SFTConfig, *, run_dir: Path | None = None, model=None, tokenizer=None, log=print):
    """Train; returns an `SFTResult`. `model`/`tokenizer` may be passed in (pipelines do)."""
    t_start = time.time()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    run_dir = run_dir or make_run_dir(cfg.output_dir, cfg.run_name, "sft", cfg)
    done = finished(run_dir) if cfg.resume else None
    if done is not None:
        log(f"[sft] {run_dir} already finished ({done['steps']} steps); not training again")
        return SFTResult(
            run_dir,
            run_dir / "checkpoint",
            done["metrics"],
            done["eval_loss"],
            done["steps"],
            0.0,
            done["data"],
        )
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
    opt, sched = make_optimizer(model, cfg, len(plan))
    start, history = _restore(run_dir, model, opt, sched, len(plan), log) if cfg.resume else (0, [])
    log(
        f"[sft] {data_stats['samples']} train samples ({data_stats['target_tokens']} target "
        f"tokens), {len(held)} held out; {len(plan)} steps over {cfg.train.epochs} epochs"
    )
    t = cfg.train
    eval_steps = _eval_steps(plan, t.eval_every)
    model.train()
    with (
        JsonlWriter(run_dir / "metrics.jsonl", "w") as metrics_log,
        progress_bar("sft", len(plan), cfg.progress) as advance,
    ):
        for row in history:
            metrics_log.write(row)
        advance(start)
        if start == 0:
            history.append(
                {"step": 0, "epoch": 0, "eval_loss": eval_loss(model, held, cfg, pad_id)}
            )
            metrics_log.write(history[-1])
        for step in range(start, len(plan)):
            epoch, idx = plan[step]
            batch = collate([train[i] for i in idx], packing=t.packing, pad_id=pad_id)
            row = {"step": step + 1, "epoch": epoch, **train_step(model, batch, opt, sched, t)}
            if step + 1 in eval_steps:
                row["eval_loss"] = eval_loss(model, held, cfg, pad_id)
            history.append(row)
            metrics_log.write(row)
            info = f"loss {row['loss']:.3f}"
            advance(info=info if "eval_loss" not in row else f"{info} eval {row['eval_loss']:.3f}")
            if t.save_every and (step + 1) % t.save_every == 0 and step + 1 < len(plan):
                _save_resumable(run_dir, model, tokenizer, opt, sched, step + 1, history, t)
    final_eval = next((r["eval_loss"] for r in reversed(history) if "eval_loss" in r), None)
    summary = {"steps": len(plan), "eval_loss": final_eval, "data": data_stats, "metrics": history}
    (run_dir / "sft_summary.json").write_text(json.dumps(summary, indent=1, default=float))
    ckpt = run_dir / "checkpoint"
    state = {"stage": "sft", "step": len(plan), "complete": True}
    save_checkpoint(ckpt, model, tokenizer, state, None)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    log(f"[sft] done: {len(plan)} steps, held-out loss {final_eval}, checkpoint {ckpt}")
    wall = time.time() - t_start
    return SFTResult(run_dir, ckpt, history, final_eval, len(plan), wall, data_stats)


def train_step(model, batch, opt, sched, t) -> dict:
    """One optimizer step on one batch; a non-finite loss or gradient is skipped and reported."""
    t0 = time.time()
    loss = batch_loss(model, batch)
    loss.backward()
    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), t.max_grad_norm))
    loss = float(loss.detach())
    finite = math.isfinite(grad_norm) and math.isfinite(loss)
    if finite:
        opt.step()
    opt.zero_grad(set_to_none=True)
    sched.step()
    return {
        "loss": loss,
        "lr": sched.get_last_lr()[0],
        "grad_norm": grad_norm,
        "skipped_nonfinite": float(not finite),
        "samples": batch.num_samples,
        "tokens": int(batch.input_ids.numel()),
        "target_tokens": batch.num_targets,
        "tokens_per_second": batch.input_ids.numel() / max(time.time() - t0, 1e-9),
    }


def _restore(run_dir: Path, model, opt, sched, total: int, log) -> tuple[int, list[dict]]:
    """(first step to run, metrics so far) from the run directory's latest checkpoint."""
    path = latest_checkpoint(run_dir)
    if path is None:
        return 0, []
    state = torch.load(path / "trainer_state.pt", weights_only=False)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    log(f"[sft] resuming from {path} at step {state['step']}/{total}")
    return state["step"], state["history"]


def _eval_steps(plan: list[tuple[int, list[int]]], every: int) -> set[int]:
    """Steps (1-based, after the update) that end with a held-out eval."""
    if every > 0:
        steps = set(range(every, len(plan) + 1, every))
    else:  # end of every epoch
        steps = {
            i + 1 for i in range(len(plan)) if i + 1 == len(plan) or plan[i + 1][0] != plan[i][0]
        }
    return steps | {len(plan)}


def _save_resumable(run_dir, model, tokenizer, opt, sched, step, history, t) -> None:
    trainer = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "step": step,
        "history": history,
    }
    path = run_dir / "checkpoints" / f"step-{step:07d}"
    save_checkpoint(path, model, tokenizer, {"stage": "sft", "step": step}, trainer)
    old = sorted((run_dir / "checkpoints").glob("step-*"))[: -max(1, t.keep_checkpoints)]
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
