"""``r1lab r1 RECIPE seeds=[0,1,2]``: the four-stage R1 pipeline once per seed, then one report
over seeds (docs/seeds.md).

Each seed is a full `r1.run` with ``seed=s`` in ``<output_dir>/<run_name>-seeds/seed<s>/``; a
half-finished seed resumes stage by stage, a complete one is reused. ``report.md/json`` give per
stage and metric the mean, per-seed values, the 95% t-interval over seeds and the within-run
interval over problems, and what each stage changed (stage - previous stage, last - base, paired
by seed); ``seeds.png`` each seed thin, the mean bold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from r1lab.eval.seeds_report import Contrast, SeedSummary, plot_seed_arms, write_seed_report
from r1lab.pipelines import r1
from r1lab.pipelines.distill_vs_rl_seeds import SeedsResult, seeds_root
from r1lab.pipelines.r1_config import R1Config
from r1lab.pipelines.seeds import run_seeds


def run_seeds_r1(cfg: R1Config, seeds: Sequence[int], log=print) -> SeedsResult:
    t0 = time.time()
    root = seeds_root(cfg.output_dir, cfg.run_name, "r1")

    def config_of(seed: int) -> R1Config:
        return replace(cfg, seed=seed, output_dir=str(root), run_name=f"seed{seed}")

    def one(seed: int, sdir: Path) -> dict:
        res = r1.run(config_of(seed), log=log)
        return {"arms": {name: dict(info["eval"]) for name, info in res.stages.items()}}

    runs = run_seeds(root, seeds, config_of, one, resumable=True, log=log)
    stages = ["base", *cfg.stages]
    k = cfg.eval.k
    contrasts = [Contrast(a, b, "pass@1") for a, b in zip(stages, stages[1:])]
    if len(stages) > 2:
        contrasts.append(Contrast(stages[0], stages[-1], "pass@1"))
    summary = SeedSummary(
        title="r1lab R1 pipeline",
        seeds=list(seeds),
        per_seed=[r.summary for r in runs],
        arms=stages,
        metrics=[
            "pass@1",
            f"cons@{k}",
            "format_rate",
            "mean_response_tokens",
            "general_accuracy",
        ],  # fmt: skip
        contrasts=contrasts,
        notes=[
            "The seed sets the synthetic cold-start seed rows, every SFT and RL stage's order and "
            "sampling, the rejection sampling, the general-chat mix and evaluation prompts, and "
            "the sampling of every evaluation.",
            "The same for every seed: the base model "
            + (
                f"(tiny, pretrain.seed {cfg.pretrain.seed})"
                if cfg.model.path == "tiny"
                else f"({cfg.model.path})"
            )
            + f", the reasoning problems (data.seed {cfg.data.seed}) and every stage's budget.",
        ],  # fmt: skip
    )
    plot = plot_seed_arms(summary, ["pass@1", f"cons@{k}", "format_rate"], root / "seeds.png")
    report = write_seed_report(root, summary, "report", [plot.name])
    log(f"[r1] report over {len(seeds)} seeds: {report['report_md']}")
    return SeedsResult(root, runs, summary, report, time.time() - t0)
