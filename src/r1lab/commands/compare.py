"""``r1lab compare RECIPE... [--steps N] [--out DIR] [seeds=[0,1,2]] [a.b=c ...]``: same seed,
same budget, one plot and one table of held-out accuracy, reward and response length
(r1lab.pipelines.compare); with ``seeds=[...]`` once per seed, with intervals over seeds
(r1lab.pipelines.compare_seeds, docs/seeds.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from r1lab.errors import ConfigError

NAME = "compare"
HELP = (
    "train several RL recipes with the same seed and budget; plot and tabulate held-out "
    "accuracy, reward and response length against step and wall time; seeds=[0,1,2]: once per "
    "seed, with 95%% intervals over seeds"
)


def _options(p) -> None:
    p.add_argument("--steps", type=int, default=None, help="RL steps per recipe (grpo.steps)")
    p.add_argument(
        "--out", type=Path, default=None, help="output directory (default: runs/compare-TIME)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_arguments(p) -> None:
    # REMAINDER + our own intermixed parse: options may come between recipes and overrides
    # (``r1lab compare a b --steps 5 grpo.lr=1e-4``), which plain argparse positionals refuse
    p.add_argument(
        "items",
        nargs=argparse.REMAINDER,
        metavar="RECIPE... [a.b=c ...]",
        help="recipes (bundled names or YAML paths) and overrides applied to every recipe",
    )
    _options(p)


def parse_items(args) -> tuple[list[str], list[str], int | None, Path | None]:
    """(recipes, overrides, steps, out) from the command line, options anywhere."""
    mini = argparse.ArgumentParser(prog="r1lab compare", add_help=False)
    mini.add_argument("rest", nargs="*")
    _options(mini)
    ns = mini.parse_intermixed_args(list(args.items))
    recipes = [i for i in ns.rest if "=" not in i]
    overrides = [i for i in ns.rest if "=" in i]
    if not recipes:
        raise ConfigError("r1lab compare needs at least one recipe, e.g. r1_zero_tiny dapo_tiny")
    steps = ns.steps if ns.steps is not None else args.steps
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    if ns.no_progress or args.no_progress:
        overrides.append("progress=false")
    return recipes, overrides, steps, ns.out or args.out


def run(args) -> int:
    from r1lab.pipelines import compare
    from r1lab.pipelines.seeds import take_seeds

    recipes, overrides, steps, out = parse_items(args)
    seeds, overrides = take_seeds(overrides)
    if seeds is not None:
        return _run_seeds(recipes, seeds, overrides, steps, out)
    result = compare.run(recipes, overrides=overrides, steps=steps, out_dir=out)
    print(result.table.read_text())
    print(f"compared {len(result.runs)} recipes in {result.wall_seconds:.0f}s")
    print(f"table: {result.table}\nplot:  {result.plot}\nruns:  {result.out_dir}")
    return 0


def _run_seeds(recipes, seeds, overrides, steps, out) -> int:
    from r1lab.pipelines.compare_seeds import run_seeds_compare

    result = run_seeds_compare(recipes, seeds, overrides=overrides, steps=steps, out_dir=out)
    print(result.table.read_text())
    print(f"compared {len(recipes)} recipes over {len(seeds)} seeds in {result.wall_seconds:.0f}s")
    print(f"table: {result.table}\nplot:  {result.plot}\nruns:  {result.out_dir}")
    return 0
