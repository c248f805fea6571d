"""``r1lab r1 RECIPE seeds=[0,1,2]``: the four-stage R1 pipeline once per seed, then one report
over seeds (docs/seeds.md).

Each seed is a full `r1.run` with ``seed=s`` in ``<output_dir>/<run_name>-seeds/seed<s>/``; a
half-finished seed resumes stage by stage, a complete one is reused. ``report.md/json`` give per
stage and metric the mean, per-seed values, the 95% t-interval over seeds and the within-run
interval over problems, and what each stage changed (stage - previous stage, last - base, paired
by seed); ``seeds.png`` each seed thin, the mean bold.
"""

from __future__ import annotations

from collections.abc import Sequence

from r1lab.eval.seeds_report import Contrast, SeedSummary
from r1lab.pipelines import r1
from r1lab.pipelines.distill_vs_rl_seeds import SeedsResult, run_pipeline_seeds
from r1lab.pipelines.r1_config import R1Config


def run_seeds_r1(cfg: R1Config, seeds: Sequence[int], log=print) -> SeedsResult:
    stages = ["base", *cfg.stages]
    k = cfg.eval.k
    contrasts = [Contrast(a, b, "pass@1") for a, b in zip(stages, stages[1:])]
    if len(stages) > 2:
        contrasts.append(Contrast(stages[0], stages[-1], "pass@1"))
    summary_of = lambda per_seed: SeedSummary(  # noqa: E731
        title="r1lab R1 pipeline",
        seeds=list(seeds),
        per_seed=per_seed,
        arms=stages,
        metrics=["pass@1", f"cons@{k}", "format_rate", "mean_response_tokens", "general_accuracy"],
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

    def run(c: R1Config) -> dict:
        res = r1.run(c, log=log)
        return {"arms": {name: dict(info["eval"]) for name, info in res.stages.items()}}

    return run_pipeline_seeds(cfg, seeds, "r1", run, summary_of, log)
