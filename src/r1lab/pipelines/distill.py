"""Distillation (R1 §2.4): a teacher's verified reasoning traces -> SFT of a student, no RL.

The loop, in reading order: evaluate the student's base (and a local teacher) -> rejection-sample
the teacher on the training prompts (`rejection_sampling`: correct, filtered, deduplicated,
capped, with provenance; resumable) -> SFT of the student on those traces (`sft`) -> evaluate
the distilled student. The teacher is a checkpoint directory (``teacher.path``) or any
OpenAI-compatible endpoint (``sample.teacher.base_url``). Stages write into one run directory
and a rerun skips the finished ones; ``report.md/json`` puts every evaluation side by side.

Under torchrun rank 0 runs every stage and the other ranks join it for the student's SFT (the
stage that trains: DDP or FSDP2, `sft.run`); they return None.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from r1lab.config import save_config
from r1lab.errors import ConfigError
from r1lab.pipelines import rejection_sampling, sft
from r1lab.pipelines.common import task_examples
from r1lab.pipelines.distill_config import DistillConfig
from r1lab.pipelines.r1_common import (
    PipelineResult,
    evaluated_stages,
    finish,
    open_run_dir,
    run_stage,
    stage_config,
)
from r1lab.utils import dist as rdist


def _check(cfg: DistillConfig) -> None:
    endpoint = cfg.sample.teacher.base_url
    if not endpoint and not cfg.teacher.path:
        raise ConfigError("set teacher.path (a checkpoint directory) or sample.teacher.base_url")
    if not endpoint and not Path(cfg.teacher.path).exists():
        raise ConfigError(
            f"teacher checkpoint {cfg.teacher.path!r} does not exist; train one first (e.g. "
            "`r1lab r1 r1_tiny`) or point teacher.path / sample.teacher.base_url at a teacher"
        )


def sample_traces(cfg: DistillConfig, sdir: Path, log=print) -> dict:
    t0 = time.time()
    rcfg = stage_config(cfg.sample, cfg, cfg.teacher, data=cfg.data)
    rs = rejection_sampling.run(rcfg, run_dir=sdir, log=log)
    if rs.rows == 0:
        raise ConfigError(
            f"the teacher produced no verified trace ({rs.stats}); nothing to distill"
        )
    return {
        "dataset": str(rs.dataset),
        "rows": rs.rows,
        "stats": rs.stats,
        "prompt_format": rs.sft_prompt_format,
        "seconds": round(time.time() - t0, 1),
    }


def train_student(
    cfg: DistillConfig, student: str, traces: dict, sdir: Path, log=print, sent=None
) -> dict:
    if sent is not None and rdist.world_size() > 1:  # rank 0: the other ranks join this SFT
        sent.append(rdist.broadcast_object((student, traces, sdir)))
    fmt = {"train_file": traces["dataset"], "prompt_format": traces["prompt_format"]}
    model = replace(cfg.student, path=student)
    scfg = stage_config(cfg.sft, cfg, model, data=replace(cfg.sft.data, **fmt))
    if rdist.is_main():
        save_config(scfg, sdir / "config.yaml")
    res = sft.run(scfg, run_dir=sdir, log=log)
    return {"checkpoint": str(res.checkpoint), "eval_loss": res.eval_loss, "sft_steps": res.steps}


def run(cfg: DistillConfig, log=print) -> PipelineResult | None:
    sent: list = []
    with rdist.process_group(timeout_s=86400):  # the other ranks wait while rank 0 samples
        if not rdist.is_main():  # wait for rank 0's student SFT (None: it runs none), join it
            job = rdist.broadcast_object(None)
            if job is not None:
                train_student(cfg, *job, log=log)
            return None
        try:
            return _run(cfg, log, sent)
        finally:
            if rdist.world_size() > 1 and not sent:
                rdist.broadcast_object(None)


def _run(cfg: DistillConfig, log, sent: list) -> PipelineResult:
    t0 = time.time()
    _check(cfg)
    run_dir = open_run_dir(cfg.output_dir, cfg.run_name, "distill", cfg)
    if cfg.student.path == "tiny":
        from r1lab.pipelines.pretrain import ensure_base

        student = str(ensure_base(cfg.pretrain, progress=cfg.progress, log=log))
    else:
        student = cfg.student.path
    test = task_examples(cfg.data, "test")

    evaluated = evaluated_stages(
        test,
        template=cfg.data.template,
        ecfg=cfg.eval,
        stop=cfg.sample.sampling.stop,
        seed=cfg.seed,
        progress=cfg.progress,
        device=cfg.student.device,
        dtype=cfg.student.dtype,
    )

    done: dict[str, dict] = {}
    done["student base"] = run_stage(
        run_dir / "0_student_base",
        "student base",
        evaluated(lambda s: {"checkpoint": student}),
        log,
    )
    if cfg.eval_teacher and not cfg.sample.teacher.base_url:
        teacher = cfg.teacher.path
        done["teacher"] = run_stage(
            run_dir / "0_teacher", "teacher", evaluated(lambda s: {"checkpoint": teacher}), log
        )
    if "sample" in cfg.stages:
        traces = run_stage(
            run_dir / "1_sample", "sample", lambda s: sample_traces(cfg, s, log), log
        )
        if "sft" in cfg.stages:
            done["distilled student"] = run_stage(
                run_dir / "2_sft",
                "sft",
                evaluated(lambda s: train_student(cfg, student, traces, s, log, sent)),
                log,
            )
        done["traces"] = traces
    return _report(cfg, run_dir, done, time.time() - t0)


def _report(cfg: DistillConfig, run_dir: Path, done: dict, wall: float) -> PipelineResult:
    traces = done.get("traces", {})
    extra = {
        "teacher": cfg.sample.teacher.base_url or cfg.teacher.path,
        "student": cfg.student.path,
        "traces kept": traces.get("rows"),
        "sampling stats": traces.get("stats"),
    }
    title = ("r1lab distillation: held-out results", "distillation")
    return finish(cfg, run_dir, done, extra, title, wall)
