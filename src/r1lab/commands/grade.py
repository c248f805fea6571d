"""``r1lab grade IN.jsonl OUT.jsonl``: grade predictions against gold answers with a verifier."""

from __future__ import annotations

import json

NAME = "grade"
HELP = "grade a JSONL of predictions against gold answers (math-verify, numbers, code...)"


def add_arguments(p) -> None:
    p.add_argument("input", help="JSONL with a prediction and a gold answer per row")
    p.add_argument("output", help="JSONL written with a verdict per row")
    p.add_argument("--verifier", default="math", help="verifier name (default: math)")
    p.add_argument("--prediction-field", default="prediction")
    p.add_argument("--answer-field", default="answer")


def run(args) -> int:
    from r1lab.rewards.grade import grade_jsonl

    summary = grade_jsonl(
        args.input,
        args.output,
        verifier=args.verifier,
        prediction_field=args.prediction_field,
        answer_field=args.answer_field,
    )
    out = {**summary.__dict__, "accuracy": summary.accuracy}
    print(json.dumps(out, default=str))
    return 0
