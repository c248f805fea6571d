"""``r1lab demo``: the end-to-end CPU demo (pretrain -> eval -> R1-Zero GRPO -> eval -> report)."""

from __future__ import annotations

from r1lab.commands._common import add_recipe_args, split_recipe

NAME = "demo"
HELP = "run the CPU demo: tiny base -> R1-Zero GRPO -> held-out report (about 10 minutes)"


def add_arguments(p) -> None:
    add_recipe_args(p, "r1_zero_tiny")


def run(args) -> int:
    from r1lab.config import load_config
    from r1lab.pipelines import demo
    from r1lab.pipelines.rl_config import RLConfig

    recipe, overrides = split_recipe(args)
    cfg = load_config(RLConfig, recipe, overrides)
    demo.run(cfg)
    return 0
