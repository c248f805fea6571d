"""Math answers graded per second by the ``math`` verifier, cold and cached (issue 3).

Workload: MATH-500 (``r1lab/data/benchmarks/math500.jsonl``), four model-style completions per
problem, 2000 in all: the gold solution itself (its boxed answer is the gold string), the gold
answer written another way (``\\dfrac`` for ``\\frac``, ``1,000`` for ``1000``, ``5.0`` for ``5``,
a ``\\displaystyle`` prefix), a near miss (the last digit changed) and another problem's answer.
Half correct, half wrong: the mix an RL step sees once a model is half right.

* ``pool_start_s``: starting the worker pool (imports sympy + math-verify in each worker).
* ``cold``: fresh pool, empty verdict cache, defaults (identical strings skip parsing).
* ``cold_all_checked``: fresh pool and cache, ``shortcut=False``: every answer goes to math-verify.
* ``cached``: the same 2000 again (every pair now in the verdict cache).

Wall-clock rates depend on what else runs on the machine (the 1-minute load average is printed).
The CPU time of this process and the workers is measured too; ``..._if_cores_idle`` is the rate
that CPU cost allows on ``workers`` otherwise idle cores: ``cores * answers / CPU seconds``.

Run: ``.venv/bin/python benchmarks/rewards.py [--workers 2] [--limit 500]``. The last line of
the output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from r1lab.eval.benchmarks import benchmark_dir
from r1lab.rewards import Completion
from r1lab.rewards.base import BatchContext
from r1lab.rewards.math import VERDICTS, configure_math_pool, math_pool, verify_math_batch

DATA = benchmark_dir() / "math500.jsonl"


def rewritten(gold: str) -> str:
    """The same answer in another form a model might write."""
    if "\\frac" in gold:
        return gold.replace("\\frac", "\\dfrac")
    if gold.isdigit():
        return f"{int(gold):,}" if int(gold) >= 1000 else gold + ".0"
    return "\\displaystyle " + gold


def perturbed(gold: str) -> str:
    """A near miss: the last digit changed (or "+1" appended when there is no digit)."""
    digits = [i for i, ch in enumerate(gold) if ch.isdigit()]
    if not digits:
        return gold + "+1"
    i = digits[-1]
    return gold[:i] + str((int(gold[i]) + 1) % 10) + gold[i + 1 :]


def workload(rows: list[dict]) -> list[Completion]:
    """Four completions per problem: verbatim, rewritten, near miss, another problem's answer."""
    out = []
    for i, r in enumerate(rows):
        gold = r["answer"]
        row = {"answer": gold, "verifier": "math"}
        other = rows[(i + 7) % len(rows)]["answer"]
        out.append(Completion(r["solution"], row))
        out.append(Completion(f"So the answer is $\\boxed{{{rewritten(gold)}}}$.", row))
        out.append(Completion(f"Hence the answer is $\\boxed{{{perturbed(gold)}}}$.", row))
        out.append(Completion(f"The final answer is $\\boxed{{{other}}}$.", row))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the given live processes (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def timed(completions: list[Completion], **params) -> tuple[float, float, list]:
    """(wall seconds, CPU seconds of this process and the workers, results)."""
    pids = math_pool().pids
    cpu0, workers0 = time.process_time(), cpu_seconds(pids)
    t0 = time.perf_counter()
    results = verify_math_batch(completions, BatchContext(), extractor="boxed", **params)
    wall = time.perf_counter() - t0
    assert math_pool().pids == pids, "a worker was replaced: CPU accounting incomplete"
    return wall, time.process_time() - cpu0 + cpu_seconds(pids) - workers0, results


def fresh_pool(workers: int) -> float:
    configure_math_pool(num_workers=workers)
    VERDICTS.clear()
    t0 = time.perf_counter()
    math_pool().start()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=500, help="MATH-500 problems to use")
    args = ap.parse_args()
    rows = [json.loads(line) for line in DATA.read_text().splitlines()][: args.limit]
    comps = workload(rows)
    print(
        f"{len(comps)} completions from {len(rows)} MATH-500 problems, {args.workers} workers, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )

    start_s = fresh_pool(args.workers)
    cold_s, cold_cpu, results = timed(comps)
    correct = sum(r.score for r in results)
    errors = sum(r.error is not None for r in results)
    cached_s, cached_cpu, again = timed(comps)
    assert [r.score for r in again] == [r.score for r in results]
    fresh_pool(args.workers)
    all_s, all_cpu, checked = timed(comps, shortcut=False)

    n = len(comps)
    cores = min(args.workers, os.cpu_count() or 1)
    figures = {
        "benchmark": "math_verifier_answers_per_second",
        "completions": n,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "pool_start_s": round(start_s, 3),
        "cold_per_s": round(n / cold_s, 1),
        "cold_cpu_ms_per_answer": round(1000 * cold_cpu / n, 3),
        "cold_per_s_if_cores_idle": round(cores * n / cold_cpu, 1),
        "cold_all_checked_per_s": round(n / all_s, 1),
        "cold_all_checked_per_s_if_cores_idle": round(cores * n / all_cpu, 1),
        "cached_per_s": round(n / cached_s, 1),
        "correct_share": round(correct / n, 4),
        "correct_share_all_checked": round(sum(r.score for r in checked) / n, 4),
        "errors": errors,
    }
    print(f"pool start          {start_s:8.2f} s")
    for label, wall, cpu in (
        ("cold", cold_s, cold_cpu),
        ("cold, all checked", all_s, all_cpu),
        ("cached", cached_s, cached_cpu),
    ):
        print(
            f"{label:18}  {n / wall:8.1f} answers/s wall ({wall:.2f} s);  "
            f"{1000 * cpu / n:.2f} CPU ms/answer -> {cores * n / cpu:8.1f}/s on {cores} idle cores"
        )
    print(f"graded correct      {correct / n:8.2%}  (expected about 50%), errors {errors}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
