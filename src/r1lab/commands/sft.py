"""``r1lab sft [RECIPE] data.train_file=PATH [a.b=c ...]``: supervised fine-tuning."""

from __future__ import annotations

from r1lab.commands._common import add_recipe_args, split_recipe

NAME = "sft"
HELP = "supervised fine-tuning on chat or prompt/completion data (assistant tokens only, packed)"


def add_arguments(p) -> None:
    add_recipe_args(p, None)


def run(args) -> int:
    from r1lab.config import load_config
    from r1lab.pipelines import sft
    from r1lab.pipelines.sft_config import SFTConfig

    recipe, overrides = split_recipe(args)
    cfg = load_config(SFTConfig, recipe, overrides)
    result = sft.run(cfg)
    loss = "n/a" if result.eval_loss is None else f"{result.eval_loss:.4f}"
    print(
        f"done in {result.wall_seconds:.0f}s: {result.steps} steps, held-out loss {loss}; "
        f"checkpoint {result.checkpoint}; metrics {result.run_dir / 'metrics.jsonl'}"
    )
    return 0
