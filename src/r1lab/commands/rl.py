"""``r1lab rl RECIPE [a.b=c ...]``: GRPO-family RL on any model (tiny base or HF directory)."""

from __future__ import annotations

import os

from r1lab.commands._common import add_recipe_args, split_recipe

NAME = "rl"
HELP = "RL from verifiable rewards (GRPO and variants) with a recipe"


def add_arguments(p) -> None:
    add_recipe_args(p, "r1_zero_tiny")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="RUN_DIR",
        help="continue from the last complete checkpoint of RUN_DIR "
        "(default: output_dir/run_name); the config must match except budget and logging",
    )


def run(args) -> int:
    from r1lab.config import load_config
    from r1lab.pipelines import grpo
    from r1lab.pipelines.rl_config import RLConfig

    recipe, overrides = split_recipe(args)
    resume = args.resume
    if isinstance(resume, str) and "=" in resume:  # `--resume run_name=x`: a flag, then overrides
        overrides.append(resume)
        resume = True
    cfg = load_config(RLConfig, recipe, overrides)
    result = grpo.run(cfg, resume=resume)
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 reports
        return 0
    last = result.metrics[-1] if result.metrics else {}
    print(
        f"done in {result.wall_seconds:.0f}s: last reward {last.get('reward', float('nan')):.3f}; "
        f"checkpoint {result.checkpoint}; metrics {result.run_dir / 'metrics.jsonl'}"
    )
    return 0
