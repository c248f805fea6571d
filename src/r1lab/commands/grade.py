"""``r1lab grade IN.jsonl OUT.jsonl``: grade predictions against gold answers with a verifier."""

from __future__ import annotations

import json
import sys

from r1lab.errors import ConfigError

NAME = "grade"
HELP = "grade a JSONL of predictions against gold answers (math-verify, numbers, code...)"
MAX_PROBLEM_LINES = 20


def add_arguments(p) -> None:
    p.add_argument("input", help="JSONL with a prediction and a gold answer per row")
    p.add_argument("output", help="JSONL written with a verdict per row")
    p.add_argument("--verifier", default="math", help="verifier name (default: math)")
    p.add_argument(
        "--extractor",
        default=None,
        help="answer extraction policy (default: 'default', see docs/grading.md)",
    )
    p.add_argument(
        "--verifier-param",
        action="append",
        default=[],
        metavar="K=V",
        help="a verifier param, repeatable (timeout_s=2, shortcut=false); V is read as JSON "
        "when it parses, else as a string",
    )
    p.add_argument("--prediction-field", default="prediction")
    p.add_argument("--answer-field", default="answer")


def parse_params(items: list[str]) -> dict:
    """``["timeout_s=2", "extractor=boxed"]`` -> ``{"timeout_s": 2, "extractor": "boxed"}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--verifier-param wants K=V, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def run(args) -> int:
    from r1lab.rewards.grade import grade_jsonl

    summary = grade_jsonl(
        args.input,
        args.output,
        verifier=args.verifier,
        verifier_params=parse_params(args.verifier_param),
        prediction_field=args.prediction_field,
        answer_field=args.answer_field,
        extractor=args.extractor,
    )
    for line in summary.problems[:MAX_PROBLEM_LINES]:
        print(f"skipped {line}", file=sys.stderr)
    if len(summary.problems) > MAX_PROBLEM_LINES:
        print(f"... and {len(summary.problems) - MAX_PROBLEM_LINES} more", file=sys.stderr)
    out = {k: v for k, v in summary.__dict__.items() if k != "problems"}
    print(json.dumps({**out, "accuracy": summary.accuracy}, default=str))
    return 0
