"""``r1lab distill RECIPE [a.b=c ...]``: teacher -> rejection-sampled traces -> student SFT."""

from __future__ import annotations

from r1lab.commands._common import add_recipe_args, split_recipe

NAME = "distill"
HELP = "distill a teacher (checkpoint or OpenAI-compatible endpoint) into a student by SFT"


def add_arguments(p) -> None:
    add_recipe_args(p, "distill_tiny")


def run(args) -> int:
    from r1lab.config import load_config
    from r1lab.pipelines import distill
    from r1lab.pipelines.distill_config import DistillConfig

    recipe, overrides = split_recipe(args)
    result = distill.run(load_config(DistillConfig, recipe, overrides))
    if result is not None:  # None: a torchrun rank other than 0 (it joined the student's SFT)
        print(f"done in {result.wall_seconds:.0f}s; report {result.report['report_md']}")
    return 0
