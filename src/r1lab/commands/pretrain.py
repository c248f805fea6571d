"""``r1lab pretrain [RECIPE] [a.b=c ...]``: build (or reuse) the cached tiny base model."""

from __future__ import annotations

from r1lab.commands._common import add_recipe_args, split_recipe

NAME = "pretrain"
HELP = "pretrain the embedded tiny base model on the synthetic corpus (cached by config hash)"


def add_arguments(p) -> None:
    add_recipe_args(p, "r1_zero_tiny")
    p.add_argument("--force", action="store_true", help="retrain even if cached")


def run(args) -> int:
    from r1lab.config import load_config
    from r1lab.pipelines.pretrain import base_dir, ensure_base, pretrain
    from r1lab.pipelines.rl_config import RLConfig

    recipe, overrides = split_recipe(args)
    cfg = load_config(RLConfig, recipe, overrides)
    if args.force:
        path = pretrain(cfg.pretrain, base_dir(cfg.pretrain), progress=cfg.progress)
    else:
        path = ensure_base(cfg.pretrain, progress=cfg.progress)
    print(path)
    return 0
