"""``r1lab rl RECIPE [a.b=c ...]``: GRPO-family RL on any model (tiny base or HF directory)."""

from __future__ import annotations

from r1lab.commands._common import add_recipe_args, split_recipe

NAME = "rl"
HELP = "RL from verifiable rewards (GRPO and variants) with a recipe"


def add_arguments(p) -> None:
    add_recipe_args(p, "r1_zero_tiny")


def run(args) -> int:
    from r1lab.config import load_config
    from r1lab.pipelines import grpo
    from r1lab.pipelines.rl_config import RLConfig

    recipe, overrides = split_recipe(args)
    cfg = load_config(RLConfig, recipe, overrides)
    result = grpo.run(cfg)
    last = result.metrics[-1] if result.metrics else {}
    print(
        f"done in {result.wall_seconds:.0f}s: last reward {last.get('reward', float('nan')):.3f}; "
        f"checkpoint {result.checkpoint}; metrics {result.run_dir / 'metrics.jsonl'}"
    )
    return 0
