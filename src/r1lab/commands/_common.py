"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse


def add_recipe_args(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument(
        "recipe",
        nargs="?",
        default=default,
        help=f"recipe YAML path or bundled recipe name (default: {default})",
    )
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. grpo.steps=10")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(default_recipe=default, intermixed=True)  # overrides before or after flags


def split_recipe(args) -> tuple[str | None, list[str]]:
    """`r1lab demo a.b=c` (overrides, no recipe) means the command's default recipe with them."""
    recipe, overrides = args.recipe, list(args.overrides)
    if recipe and "=" in recipe:
        overrides.insert(0, recipe)
        recipe = getattr(args, "default_recipe", None)
    if args.no_progress:
        overrides.append("progress=false")
    return recipe, overrides
