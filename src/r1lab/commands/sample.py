"""``r1lab sample [RECIPE] model.path=CKPT [a.b=c ...]``: rejection sampling into an SFT dataset."""

from __future__ import annotations

from r1lab.commands._common import add_recipe_args, split_recipe

NAME = "sample"
HELP = (
    "rejection sampling: k samples per prompt from a checkpoint or an OpenAI-compatible teacher, "
    "keep the verified ones, filter, dedupe, write an SFT dataset (resumable)"
)


def add_arguments(p) -> None:
    add_recipe_args(p, None)


def run(args) -> int:
    from r1lab.config import load_config
    from r1lab.pipelines import rejection_sampling
    from r1lab.pipelines.rs_config import RSConfig

    recipe, overrides = split_recipe(args)
    cfg = load_config(RSConfig, recipe, overrides)
    result = rejection_sampling.run(cfg)
    s = result.stats
    print(
        f"done in {result.wall_seconds:.0f}s: kept {result.rows} of {s['samples']} samples "
        f"({s['incorrect']} incorrect, {s['duplicate']} duplicates, {s['over_cap']} over the cap, "
        + ", ".join(f"{v} {k}" for k, v in sorted(s.items()) if k.startswith("filter/"))
        + f"); dataset {result.dataset} (sft: data.prompt_format={result.sft_prompt_format})"
    )
    return 0
