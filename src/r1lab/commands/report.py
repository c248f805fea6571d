"""``r1lab report RUN...``: runs or checkpoints side by side in one markdown table."""

from __future__ import annotations

NAME = "report"
HELP = "compare the report.json of several run directories in one table"


def add_arguments(p) -> None:
    p.add_argument("runs", nargs="+", help="run directories holding report.json")


def run(args) -> int:
    from r1lab.eval.report import compare_runs

    print(compare_runs(args.runs))
    return 0
