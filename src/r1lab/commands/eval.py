"""``r1lab eval [RECIPE] key=value ...``: the R1 evaluation protocol on benchmarks or any source.

Examples::

    r1lab eval model=fetch:smollm2 benchmarks=[gsm8k] limit=50 k=4
    r1lab eval endpoint=http://127.0.0.1:8000/v1 endpoint_model=my-model benchmarks=[math500]
    r1lab eval model=runs/demo-x/checkpoint source=my.jsonl verifier=number template=r1_zero
"""

from __future__ import annotations

from r1lab.commands._common import add_recipe_args, split_recipe

NAME = "eval"
HELP = "evaluate a checkpoint or endpoint: pass@1, cons@k, pass@k with CIs (R1 protocol)"


def add_arguments(p) -> None:
    add_recipe_args(p, None)


def run(args) -> int:
    from r1lab.config import load_config
    from r1lab.eval.run import EvalRunConfig, run_eval

    recipe, overrides = split_recipe(args)
    out = run_eval(load_config(EvalRunConfig, recipe, overrides))
    print(f"report: {out['report_md']} ({out['report_json']})")
    return 0
