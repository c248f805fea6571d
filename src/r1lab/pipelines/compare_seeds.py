"""``r1lab compare RECIPE... seeds=[0,1,2]``: the comparison of `r1lab.pipelines.compare` once per
seed, then one report over seeds (docs/seeds.md).

The loop: load the starting model once -> for each seed (`pipelines.seeds.run_seeds`: complete
seeds are reused) a full ``compare.run`` with ``seed=s`` into ``OUT/seed<s>/`` -> ``OUT/compare.md``
and ``compare.json`` (per recipe and metric: mean, per-seed values, 95% t-interval over seeds,
the within-run interval over problems; each recipe's gain and every pair of recipes as
differences paired by seed) and ``compare.png`` (each seed thin, the mean bold).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import torch

from r1lab.eval.seeds_report import Contrast, SeedSummary, plot_seed_curves, write_seed_report
from r1lab.pipelines import compare
from r1lab.pipelines.seeds import SeedRun, run_seeds

METRICS = ("heldout_pass@1", "heldout_pass@1_base", "heldout_cons", "heldout_format_rate",
           "train_reward", "train_accuracy", "response_len", "truncation_rate", "rl_seconds")  # fmt: skip
CURVE_KEYS = ("step", "elapsed", "reward", "response_len_mean")


@dataclass
class CompareSeedsResult:
    out_dir: Path
    seeds: list[SeedRun]
    summary: SeedSummary
    plot: Path
    table: Path
    wall_seconds: float


def seed_summary(result: compare.CompareResult) -> dict:
    """What the report over seeds needs of one seed's comparison (JSON, kept in seed_done.json)."""
    arms, curves, stopped = {}, {}, {}
    for run in result.runs:
        row = compare.summary_row(run)
        k = run.final.get("k")
        arms[run.name] = {
            **{key: v for key, v in row.items() if isinstance(v, int | float)},
            "heldout_pass@1_ci": run.final.get("pass@1_ci"),
            "heldout_pass@1_base_ci": run.base.get("pass@1_ci"),
            "heldout_cons": run.final.get(f"cons@{k}", math.nan),
            "heldout_cons_se": run.final.get(f"cons@{k}_se", math.nan),
        }
        curves[run.name] = {
            "heldout": compare.heldout_points(run),
            "rows": [{key: r[key] for key in CURVE_KEYS if key in r} for r in run.rows],
        }
        if run.stopped:
            stopped[run.name] = run.stopped_check
    return {"arms": arms, "curves": curves, "stopped": stopped, "settings": result.settings}


def run_seeds_compare(
    recipes: Sequence[str],
    seeds: Sequence[int],
    *,
    overrides: Sequence[str] = (),
    steps: int | None = None,
    out_dir: Path | None = None,
    model=None,
    tokenizer=None,
    log=print,
) -> CompareSeedsResult:
    """Each seed a full `compare.run` (same starting model); one report over the seeds.

    Default ``out_dir``: ``<output_dir>/compare-seeds-<recipes>`` (stable, so a rerun reuses the
    complete seeds).
    """
    t0 = time.time()
    given_model = model is not None
    cfgs = compare.resolve(recipes, overrides, steps)  # checks recipes, budgets before any work
    names = [name for name, _ in cfgs]
    first = cfgs[0][1]
    out_dir = Path(out_dir or Path(first.output_dir) / f"compare-seeds-{'-'.join(names)}")

    def per_seed(seed: int) -> list[str]:
        return [*overrides, f"seed={seed}"]

    def config_of(seed: int) -> dict:
        resolved = compare.resolve(recipes, per_seed(seed), steps)
        return {"recipes": {n: c for n, c in resolved}, "start": _start_label(given_model, first)}

    def one(seed: int, sdir: Path) -> dict:
        nonlocal model, tokenizer
        if model is None:
            if first.threads:
                torch.set_num_threads(first.threads)
            model, tokenizer = compare._load(first, log)
        res = compare.run(recipes, overrides=per_seed(seed), steps=steps, out_dir=sdir,
                          model=model, tokenizer=tokenizer, log=log)  # fmt: skip
        return seed_summary(res)

    runs = run_seeds(out_dir, seeds, config_of, one, resumable=False, log=log)
    summary = SeedSummary(
        title="r1lab compare",
        seeds=list(seeds),
        per_seed=[r.summary for r in runs],
        arms=names,
        metrics=list(METRICS),
        contrasts=[Contrast(n, n, "heldout_pass@1_base", "heldout_pass@1") for n in names]
        + [Contrast(a, b, "heldout_pass@1") for a, b in combinations(names, 2)],
        notes=notes(first, runs, given_model),
    )
    plot = plot_seed_curves(
        curves(runs), compare.PANELS, (("step", "step"), ("elapsed", "RL wall time (s)")),
        out_dir / "compare.png",
    )  # fmt: skip
    paths = write_seed_report(out_dir, summary, "compare", [plot.name])
    return CompareSeedsResult(
        out_dir, runs, summary, plot, Path(paths["report_md"]), time.time() - t0
    )


def _start_label(given_model: bool, cfg) -> object:
    if given_model:
        return "the model passed in"
    return {"model": cfg.model.path, "pretrain": cfg.pretrain}


def curves(runs: Sequence[SeedRun]) -> dict:
    """``{panel key: {recipe: [points of each seed]}}`` for `plot_seed_curves`."""
    out: dict[str, dict[str, list]] = {key: {} for key, _ in compare.PANELS}
    for run in runs:
        for name, c in run.summary["curves"].items():
            for key, _ in compare.PANELS:
                pts = c["heldout"] if key.startswith("heldout") else c["rows"]
                out[key].setdefault(name, []).append(pts)
    return out


def notes(cfg, runs: Sequence[SeedRun], given_model: bool = False) -> list[str]:
    if given_model:
        start = "the model passed in"
    elif cfg.model.path == "tiny":
        start = f"the tiny base pretrained with pretrain.seed {cfg.pretrain.seed}"
    else:
        start = cfg.model.path
    out = [
        "The seed sets the RL prompt order, the rollout sampling and the held-out evaluation's "
        "sampling of every recipe (and of the starting model's evaluation).",
        f"The same for every seed: the starting model ({start}), the training and held-out "
        f"problems (data.seed {cfg.data.seed}), the budget "
        f"({cfg.grpo.steps} steps x {cfg.grpo.prompts_per_step} prompts x {cfg.grpo.group_size}).",
        "heldout_pass@1_base is the starting model's held-out pass@1 (the same weights, "
        "evaluated with each seed); heldout_cons is cons@k after training.",
    ]
    for run in runs:
        for name, check in run.summary.get("stopped", {}).items():
            out.append(f"seed {run.seed}: {name} was stopped ({check}) and evaluated as it was.")
    return out
