"""Answers per second through ``r1lab grade`` (issue 18): the default extraction policy end to end.

Workload: MATH-500 (loaded with `r1lab.eval.benchmarks.load_benchmark`), four predictions per
problem, 2000 in all, written as a user hands them to ``r1lab grade``: the gold solution (a
``\\boxed{}`` answer), the answer in prose without a box ("So the final answer is $...$." ->
math-verify's own extraction over the whole text), a near miss in prose (the last digit
changed), and a GSM8K-style ``#### answer`` final line with another problem's answer.

* ``pool_start_s``: starting the worker pool (imports sympy + math-verify in each worker).
* ``answers_per_s``: the JSONL read, extraction, grading and JSONL write of ``grade_jsonl``
  (pool already started; empty verdict cache; defaults otherwise).
* ``cpu_answers_per_s_2_cores``: ``2 * answers / CPU seconds`` of this process and the workers,
  the rate the work allows on 2 otherwise idle cores (the 1-minute load average is printed).

Run: ``.venv/bin/python benchmarks/grading.py [--limit 500]``; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from r1lab.eval.benchmarks import load_benchmark
from r1lab.rewards.grade import grade_jsonl
from r1lab.rewards.math import VERDICTS, math_pool


def perturbed(gold: str) -> str:
    digits = [i for i, ch in enumerate(gold) if ch.isdigit()]
    if not digits:
        return gold + "+1"
    i = digits[-1]
    return gold[:i] + str((int(gold[i]) + 1) % 10) + gold[i + 1 :]


def rows(limit: int) -> list[dict]:
    exs = load_benchmark("math500", limit=limit)
    out = []
    for i, ex in enumerate(exs):
        other = exs[(i + 7) % len(exs)].answer
        for pred in (
            ex.meta["solution"],
            f"Putting it together, we get the result. So the final answer is ${ex.answer}$.",
            f"After simplifying, the answer is ${perturbed(ex.answer)}$.",
            f"Adding the parts gives the total.\n#### {other}",
        ):
            out.append({"prediction": pred, "answer": ex.answer})
    return out


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=500)
    args = ap.parse_args()
    data = rows(args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in data))
        t0 = time.perf_counter()
        pool = math_pool()
        pool.run([("1", "1.0")], 30.0)
        pool_start = time.perf_counter() - t0
        VERDICTS.clear()
        pids = [os.getpid()] + [w.proc.pid for w in pool._workers]
        cpu0, t1 = cpu_seconds(pids), time.perf_counter()
        summary = grade_jsonl(src, Path(tmp) / "out.jsonl")
        wall = time.perf_counter() - t1
        cpu = cpu_seconds(pids) - cpu0
    figures = {
        "answers": summary.rows,
        "correct": summary.correct,
        "errors": summary.errors,
        "timeouts": summary.timeouts,
        "pool_start_s": round(pool_start, 2),
        "wall_s": round(wall, 2),
        "answers_per_s": round(summary.rows / wall, 1),
        "cpu_answers_per_s_2_cores": round(2 * summary.rows / cpu, 1) if cpu else None,
        "load_avg_1m": os.getloadavg()[0],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
