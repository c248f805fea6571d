"""``r1lab sample [RECIPE] model.path=CKPT [a.b=c ...]``: rejection sampling into an SFT dataset.

``r1lab sample --regrade RUN [a.b=c ...]`` grades and filters the samples stored in ``RUN`` again
(new reward params, filters, min_score, cap...) and rewrites its dataset, without generating.
"""

from __future__ import annotations

from r1lab.commands._common import add_recipe_args, split_recipe

NAME = "sample"
HELP = (
    "rejection sampling: k samples per prompt from a checkpoint or an OpenAI-compatible teacher, "
    "keep the verified ones, filter, dedupe, write an SFT dataset (resumable); every sample is "
    "kept with its verdict in RUN/samples.jsonl, and --regrade RUN grades them again"
)


def add_arguments(p) -> None:
    add_recipe_args(p, None)
    p.add_argument(
        "--regrade",
        metavar="RUN",
        help="re-apply grading and filters to the samples stored in run directory RUN (no "
        "generation); overrides may change rewards, keep_component, min_score, filters, "
        "reasoning, dedupe, max_per_prompt, output",
    )


def run(args) -> int:
    from r1lab.config import load_config
    from r1lab.errors import ConfigError
    from r1lab.pipelines import rejection_sampling
    from r1lab.pipelines.rs_config import RSConfig

    recipe, overrides = split_recipe(args)
    if args.regrade:
        from r1lab.pipelines.rs_regrade import regrade

        if recipe:
            raise ConfigError(
                f"--regrade reads the run's own config; give overrides only, not {recipe!r}"
            )
        result = regrade(args.regrade, overrides)
    else:
        result = rejection_sampling.run(load_config(RSConfig, recipe, overrides))
    print(end_line(result))
    return 0


def end_line(result) -> str:
    """The closing line: counts per reason, the most common rejection, where everything is."""
    from r1lab.pipelines.rejection_sampling import top_rejection

    s = result.stats
    top = top_rejection(result.rejections)
    return (
        f"done in {result.wall_seconds:.0f}s: kept {result.rows} of {s['samples']} samples "
        f"({s['incorrect']} incorrect, {s['duplicate']} duplicates, {s['over_cap']} over the cap"
        + "".join(f", {v} {k}" for k, v in sorted(s.items()) if k.startswith("filter/"))
        + ")"
        + (f"; {top}" if top else "")
        + f"; dataset {result.dataset} (sft: data.prompt_format={result.sft_prompt_format}); "
        f"every sample with its verdict: {result.samples}"
    )
