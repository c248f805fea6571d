"""``r1lab r1 RECIPE [a.b=c ...]``: the four-stage DeepSeek-R1 pipeline from one recipe."""

from __future__ import annotations

from r1lab.commands._common import add_recipe_args, split_recipe
from r1lab.pipelines.seeds import take_seeds

NAME = "r1"
HELP = (
    "the four-stage R1 pipeline (cold-start SFT -> reasoning RL -> rejection sampling + SFT -> "
    "RL for all scenarios) into one run directory; a rerun skips finished stages; seeds=[0,1,2]: "
    "once per seed, with 95%% intervals over seeds"
)


def add_arguments(p) -> None:
    add_recipe_args(p, "r1_tiny")


def run(args) -> int:
    from r1lab.config import load_config
    from r1lab.pipelines import r1
    from r1lab.pipelines.r1_config import R1Config

    recipe, overrides = split_recipe(args)
    seeds, overrides = take_seeds(overrides)
    if seeds is not None:
        from r1lab.eval.seeds_report import headline
        from r1lab.pipelines.r1_seeds import run_seeds_r1

        res = run_seeds_r1(load_config(R1Config, recipe, overrides), seeds)
        print("\n".join(headline(res.summary, "pass@1")))
        print(f"{len(seeds)} seeds in {res.wall_seconds:.0f}s; report {res.report['report_md']}")
        return 0
    result = r1.run(load_config(R1Config, recipe, overrides))
    print(f"done in {result.wall_seconds:.0f}s; report {result.report['report_md']}")
    return 0
