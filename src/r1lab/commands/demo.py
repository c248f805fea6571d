"""``r1lab demo``: the end-to-end CPU demo (pretrain -> eval -> R1-Zero GRPO -> eval -> report)."""

from __future__ import annotations

from r1lab.commands._common import add_recipe_args, split_recipe
from r1lab.pipelines.seeds import take_seeds

NAME = "demo"
HELP = (
    "run the CPU demo: tiny base -> R1-Zero GRPO -> held-out report (about 10 minutes); "
    "seeds=[0,1,2]: once per seed, with 95%% intervals over seeds"
)


def add_arguments(p) -> None:
    add_recipe_args(p, "r1_zero_tiny")


def run(args) -> int:
    from r1lab.config import load_config
    from r1lab.pipelines import demo
    from r1lab.pipelines.rl_config import RLConfig

    recipe, overrides = split_recipe(args)
    seeds, overrides = take_seeds(overrides)
    cfg = load_config(RLConfig, recipe, overrides)
    if seeds is not None:
        from r1lab.eval.seeds_report import headline

        out = demo.run_seeds(cfg, seeds)
        print("\n".join(headline(out["summary"], "pass@1")))
        print(f"report: {out['report_md']}")
        return 0
    demo.run(cfg)
    return 0
