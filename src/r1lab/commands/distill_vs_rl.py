"""``r1lab distill-vs-rl RECIPE [a.b=c ...]``: R1 Table 6 in miniature, distillation vs RL."""

from __future__ import annotations

from r1lab.commands._common import add_recipe_args, split_recipe
from r1lab.pipelines.seeds import take_seeds

NAME = "distill-vs-rl"
HELP = (
    "train a smaller student (a) by distillation from an RL-trained teacher and (b) by RL from its "
    "own base, with comparable budgets; one report side by side (R1 Table 6 in miniature); "
    "seeds=[0,1,2]: once per seed, with 95%% intervals over seeds"
)


def add_arguments(p) -> None:
    add_recipe_args(p, "distill_vs_rl_tiny")


def run(args) -> int:
    from r1lab.config import load_config
    from r1lab.pipelines import distill_vs_rl
    from r1lab.pipelines.distill_vs_rl_config import DistillVsRLConfig

    recipe, overrides = split_recipe(args)
    seeds, overrides = take_seeds(overrides)
    if seeds is not None:
        from r1lab.eval.seeds_report import headline
        from r1lab.pipelines.distill_vs_rl_seeds import run_seeds_distill_vs_rl

        res = run_seeds_distill_vs_rl(load_config(DistillVsRLConfig, recipe, overrides), seeds)
        print("\n".join(headline(res.summary, "pass@1")))
        print(f"{len(seeds)} seeds in {res.wall_seconds:.0f}s; report {res.report['report_md']}")
        return 0
    result = distill_vs_rl.run(load_config(DistillVsRLConfig, recipe, overrides))
    print(f"done in {result.wall_seconds:.0f}s; report {result.report['report_md']}")
    return 0
