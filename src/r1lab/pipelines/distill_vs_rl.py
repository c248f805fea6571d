"""The Table 6 experiment in miniature (R1 §4.1): is distilling a strong teacher into a small
student better than RL on the small student itself?

The loop, in reading order, into one run directory (each stage ends with ``done.json``; a rerun
skips finished stages and reuses their checkpoints and evaluations):

0. teacher RL: R1-Zero-style GRPO of the teacher base (skipped when ``teacher.path`` names an
   RL-trained checkpoint)
1. evaluate the teacher
2. evaluate the student's base (a smaller tiny model pretrained on the same corpus)
3. arm (a), distillation: rejection-sample the teacher on the training prompts (`distill.sample_traces`)
4. ... and SFT the student base on the verified traces (`distill.train_student`), then evaluate
5. arm (b), RL: the same GRPO with the same prompts and rewards straight from the student's base,
   then evaluate

``report.md/json`` puts the four evaluations side by side (held-out pass@1, cons@k, format rate)
with each arm's budget in numbers: student optimizer steps, training sequences, trained target
tokens (SFT: assistant tokens; RL: response tokens) and wall seconds. With ``rl_budget:
sequences`` the RL arm gets as many training sequences as the distilled student saw.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

from r1lab.config import save_config
from r1lab.errors import ConfigError
from r1lab.pipelines import grpo
from r1lab.pipelines.common import task_examples
from r1lab.pipelines.distill import sample_traces, train_student
from r1lab.pipelines.distill_config import DistillConfig, TeacherModelConfig
from r1lab.pipelines.distill_vs_rl_config import DistillVsRLConfig
from r1lab.pipelines.r1_common import (
    PipelineResult,
    evaluated_stages,
    finish,
    open_run_dir,
    run_stage,
    stage_config,
)
from r1lab.pipelines.rl_config import ModelConfig
from r1lab.utils.jsonl import read_jsonl


def _base(path: str, pretrain, cfg: DistillVsRLConfig, log) -> str:
    if path != "tiny":
        if not Path(path).exists():
            raise ConfigError(f"base model {path!r} does not exist")
        return path
    from r1lab.pipelines.pretrain import ensure_base

    pre = (
        pretrain if pretrain.threads or not cfg.threads else replace(pretrain, threads=cfg.threads)
    )
    return str(ensure_base(pre, progress=cfg.progress, log=log))


def rl_budget(metrics: list[dict], g, seconds: float) -> dict:
    """What a GRPO run spent: optimizer steps, sequences and response tokens trained on."""
    per_step = g.prompts_per_step * g.group_size
    return {
        "optimizer_steps": len(metrics) * g.mu * g.mini_batches,
        "sequences": len(metrics) * per_step,
        "trained_tokens": round(sum(m["response_len_mean"] * per_step for m in metrics)),
        "wall_seconds": round(seconds, 1),
    }


def run_rl(cfg: DistillVsRLConfig, section, model_path: str, sdir: Path, log=print) -> dict:
    """A GRPO run of ``model_path``: ``section`` (an `RLConfig`) with what the experiment sets."""
    owned = {"data": cfg.data, "rewards": cfg.rewards, "eval": cfg.eval}
    rcfg = stage_config(section, cfg, ModelConfig(model_path), **owned)
    save_config(rcfg, sdir / "config.yaml")
    res = grpo.run(rcfg, run_dir=sdir, log=log)
    return {
        "checkpoint": str(res.checkpoint),
        "budget": rl_budget(res.metrics, rcfg.grpo, res.wall_seconds),
        "last_reward": res.metrics[-1].get("reward") if res.metrics else None,
        "seconds": round(res.wall_seconds, 1),  # an evaluated stage overwrites it with its total
    }


def distill_config(cfg: DistillVsRLConfig, teacher: str, student: str) -> DistillConfig:
    """The `distill` pipeline's config for arm (a): same data, rewards and evaluation."""
    return DistillConfig(
        seed=cfg.seed,
        threads=cfg.threads,
        progress=cfg.progress,
        teacher=TeacherModelConfig(teacher),
        student=ModelConfig(student),
        data=cfg.data,
        sample=replace(cfg.distill.sample, rewards=cfg.rewards),
        sft=cfg.distill.sft,
        eval=cfg.eval,
    )


def distill_student(dcfg: DistillConfig, student: str, traces: dict, sdir: Path, log) -> dict:
    t0 = time.time()
    info = train_student(dcfg, student, traces, sdir, log)
    rows = [m for m in read_jsonl(sdir / "metrics.jsonl") if "loss" in m]
    info["budget"] = {
        "optimizer_steps": len(rows),
        "sequences": sum(int(m["samples"]) for m in rows),
        "trained_tokens": sum(int(m["target_tokens"]) for m in rows),
        "wall_seconds": round(time.time() - t0, 1),
        "teacher_sampling_seconds": traces["seconds"],
    }
    return info


def rl_arm(cfg: DistillVsRLConfig, distilled: dict):
    """Arm (b)'s RL config: with ``rl_budget: sequences`` its steps match arm (a)'s sequences."""
    g = cfg.rl.grpo
    if cfg.rl_budget == "none":
        return cfg.rl
    steps = math.ceil(distilled["budget"]["sequences"] / (g.prompts_per_step * g.group_size))
    return replace(cfg.rl, grpo=replace(g, steps=max(1, steps)))


def run(cfg: DistillVsRLConfig, log=print) -> PipelineResult:
    t0 = time.time()
    if cfg.teacher.path and not Path(cfg.teacher.path).exists():
        raise ConfigError(f'teacher.path {cfg.teacher.path!r} does not exist ("" = train it here)')
    run_dir = open_run_dir(cfg.output_dir, cfg.run_name, "distill-vs-rl", cfg)
    log(f"[distill-vs-rl] run directory: {run_dir}")
    test = task_examples(cfg.data, "test")

    evaluated = evaluated_stages(
        test,
        template=cfg.data.template,
        ecfg=cfg.eval,
        stop=cfg.rl.sampling.stop,
        batch_size=cfg.rl.sampling.batch_size,
        seed=cfg.seed,
        progress=cfg.progress,
    )

    done: dict[str, dict] = {}
    teacher = cfg.teacher.path
    if not teacher:
        tbase = _base(cfg.teacher.base, cfg.teacher.pretrain, cfg, log)
        body = lambda s: run_rl(cfg, cfg.teacher.rl, tbase, s, log)  # noqa: E731
        done["teacher RL"] = run_stage(run_dir / "0_teacher_rl", "teacher RL", body, log)
        teacher = done["teacher RL"]["checkpoint"]
    done["teacher"] = run_stage(
        run_dir / "1_teacher", "teacher", evaluated(lambda s: {"checkpoint": teacher}), log
    )
    student = _base(cfg.student.base, cfg.student.pretrain, cfg, log)
    done["student base"] = run_stage(
        run_dir / "2_student_base",
        "student base",
        evaluated(lambda s: {"checkpoint": student}),
        log,
    )
    dcfg = distill_config(cfg, teacher, student)
    traces = run_stage(
        run_dir / "3_distill_sample", "teacher traces", lambda s: sample_traces(dcfg, s, log), log
    )
    done["(a) distilled student"] = run_stage(
        run_dir / "4_distill_sft",
        "(a) distillation",
        evaluated(lambda s: distill_student(dcfg, student, traces, s, log)),
        log,
    )
    arm = rl_arm(cfg, done["(a) distilled student"])
    done["(b) RL student"] = run_stage(
        run_dir / "5_student_rl",
        "(b) RL",
        evaluated(lambda s: run_rl(cfg, arm, student, s, log)),
        log,
    )
    done["traces"] = traces
    return _report(cfg, run_dir, done, time.time() - t0)


def _report(cfg: DistillVsRLConfig, run_dir: Path, done: dict, wall: float):
    arms = {n: done[n]["budget"] for n in ("(a) distilled student", "(b) RL student")}
    extra = {
        "teacher": cfg.teacher.path or done.get("teacher RL", {}).get("checkpoint"),
        "teacher RL budget": done.get("teacher RL", {}).get("budget"),
        "student base": cfg.student.base
        if cfg.student.base != "tiny"
        else f"tiny {cfg.student.pretrain.size}",
        "budget rule": {
            "sequences": "the RL arm trains on as many sequences as the distilled student",
            "none": "the RL arm runs rl.grpo.steps",
        }[cfg.rl_budget],
        **{f"budget {name}": b for name, b in arms.items()},
        "traces kept": done["traces"].get("rows"),
        "sampling stats": done["traces"].get("stats"),
    }
    title = ("r1lab distillation vs RL (R1 Table 6 in miniature)", "distillation vs RL")
    result = finish(cfg, run_dir, done, extra, title, wall)
    _print_budgets(arms)
    return result


def _print_budgets(arms: dict[str, dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="student budgets")
    table.add_column("budget")
    for name in arms:
        table.add_column(name, justify="right")
    for key in ("optimizer_steps", "sequences", "trained_tokens", "wall_seconds"):
        table.add_row(key, *[str(b.get(key, "-")) for b in arms.values()])
    Console().print(table)
