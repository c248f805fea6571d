"""``r1lab distill-vs-rl RECIPE seeds=[0,1,2]``: R1 Table 6 in miniature once per seed, then one
report over seeds (docs/seeds.md).

Each seed is a full `distill_vs_rl.run` (teacher RL, traces, both arms, evaluations) with
``seed=s`` in ``<output_dir>/<run_name>-seeds/seed<s>/``; a half-finished seed resumes stage by
stage, a complete one is reused. ``report.md/json`` give per arm and metric the mean, per-seed
values, the 95% t-interval over seeds and the within-run interval over problems, and the
differences (a) - (b), (a) - base, (b) - base paired by seed; ``seeds.png`` each seed thin, the
mean bold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from r1lab.eval.seeds_report import Contrast, SeedSummary, plot_seed_arms, write_seed_report
from r1lab.pipelines import distill_vs_rl
from r1lab.pipelines.distill_vs_rl_config import DistillVsRLConfig
from r1lab.pipelines.seeds import SeedRun, run_seeds

ARMS = ("teacher", "student base", "(a) distilled student", "(b) RL student")
BUDGET_KEYS = ("sequences", "trained_tokens", "wall_seconds")


@dataclass
class SeedsResult:
    run_dir: Path
    seeds: list[SeedRun]
    summary: SeedSummary
    report: dict[str, str]
    wall_seconds: float


def seeds_root(output_dir: str, run_name: str, kind: str) -> Path:
    """``<output_dir>/<run_name or kind>-seeds``: stable, so a rerun finds the complete seeds."""
    return Path(output_dir) / f"{run_name or kind}-seeds"


def seed_summary(res: distill_vs_rl.PipelineResult) -> dict:
    arms = {name: dict(res.stages[name]["eval"]) for name in ARMS if name in res.stages}
    for name in ARMS[2:]:
        budget = res.stages[name].get("budget", {})
        arms[name] |= {f"budget_{k}": budget.get(k) for k in BUDGET_KEYS}
    return {"arms": arms}


def run_pipeline_seeds(cfg, seeds: Sequence[int], kind: str, run, summary_of, log) -> SeedsResult:
    """``run(config) -> summary`` once per seed (resumable), then ``summary_of(per_seed)`` (a
    `SeedSummary`) written as the report over seeds with ``seeds.png``."""
    t0 = time.time()
    root = seeds_root(cfg.output_dir, cfg.run_name, kind)

    def config_of(seed: int):
        return replace(cfg, seed=seed, output_dir=str(root), run_name=f"seed{seed}")

    one = lambda seed, sdir: run(config_of(seed))  # noqa: E731
    runs = run_seeds(root, seeds, config_of, one, resumable=True, log=log)
    summary = summary_of([r.summary for r in runs])
    k = cfg.eval.k
    plot = plot_seed_arms(summary, ["pass@1", f"cons@{k}", "format_rate"], root / "seeds.png")
    report = write_seed_report(root, summary, "report", [plot.name])
    log(f"[{kind}] report over {len(seeds)} seeds: {report['report_md']}")
    return SeedsResult(root, runs, summary, report, time.time() - t0)


def run_seeds_distill_vs_rl(cfg: DistillVsRLConfig, seeds: Sequence[int], log=print) -> SeedsResult:
    k = cfg.eval.k
    a, b, base = ARMS[2], ARMS[3], ARMS[1]
    summary_of = lambda per_seed: SeedSummary(  # noqa: E731
        title="r1lab distillation vs RL (R1 Table 6 in miniature)",
        seeds=list(seeds),
        per_seed=per_seed,
        arms=list(ARMS),
        metrics=[
            "pass@1",
            f"cons@{k}",
            "format_rate",
            "mean_response_tokens",
            *(f"budget_{key}" for key in BUDGET_KEYS),
        ],  # fmt: skip
        contrasts=[Contrast(x, y, "pass@1") for x, y in ((b, a), (base, a), (base, b))],
        notes=notes(cfg),
    )
    run = lambda c: seed_summary(distill_vs_rl.run(c, log=log))  # noqa: E731
    return run_pipeline_seeds(cfg, seeds, "distill-vs-rl", run, summary_of, log)


def notes(cfg: DistillVsRLConfig) -> list[str]:
    teacher = (
        f"the teacher checkpoint {cfg.teacher.path}"
        if cfg.teacher.path
        else f"the teacher's base (pretrain.seed {cfg.teacher.pretrain.seed})"
    )
    varies = "the teacher's RL, " if not cfg.teacher.path else ""
    return [
        f"The seed sets {varies}the teacher's sampled traces, the distilled student's SFT, the "
        "RL arm's GRPO and the sampling of every evaluation.",
        f"The same for every seed: {teacher}, the student's base (pretrain.seed "
        f"{cfg.student.pretrain.seed}), the training and held-out problems (data.seed "
        f"{cfg.data.seed}), the budget rule ({cfg.rl_budget}).",
        "budget_* rows: what each student arm trained on (sequences, target tokens, seconds).",
    ]
