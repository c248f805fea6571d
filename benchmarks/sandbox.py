"""Sandbox throughput: executions per second for a trivial program and for a HumanEval problem
with its tests, through the bounded pool (default 2 workers, the 2-core target machine).

Usage: .venv/bin/python benchmarks/sandbox.py [--workers 2] [--n 200] [--n-humaneval 100]
The last output line is one JSON object with the figures. Target: >= 20 trivial executions/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from r1lab.eval.benchmarks import benchmark_dir
from r1lab.rewards.base import Completion
from r1lab.rewards.code import build_cases
from r1lab.sandbox import Program, SandboxConfig, SandboxPool, describe_isolation, execute

DATA = benchmark_dir() / "humaneval.jsonl"


def humaneval_program(problem_id: str) -> Program:
    """The canonical solution of one HumanEval problem + its tests, as the code reward runs it."""
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    row = next(r for r in rows if r["id"] == problem_id)
    completion = Completion(row["problem"] + row["answer"], row)
    (case,) = build_cases(completion.text, row, SandboxConfig())
    return case.program


def throughput(pool: SandboxPool, program: Program, n: int, cfg: SandboxConfig) -> dict:
    pool.run_many([program] * min(n, 2 * pool.workers), cfg)  # warm the page cache
    t0 = time.perf_counter()
    results = pool.run_many([program] * n, cfg)
    wall = time.perf_counter() - t0
    bad = [r.status for r in results if r.status != "ok"]
    if bad:
        raise SystemExit(f"benchmark program failed: {bad[:3]} {results[0].stderr[-300:]}")
    return {
        "n": n,
        "wall_s": round(wall, 3),
        "exec_per_s": round(n / wall, 2),
        "median_run_wall_ms": round(1000 * statistics.median(r.wall_s for r in results), 1),
        "median_run_cpu_ms": round(1000 * statistics.median(r.cpu_s for r in results), 1),
    }


def latency(program: Program, cfg: SandboxConfig, n: int = 20) -> float:
    walls = []
    for _ in range(n):
        t0 = time.perf_counter()
        execute(program, cfg)
        walls.append(time.perf_counter() - t0)
    return round(1000 * statistics.median(walls), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n", type=int, default=200, help="trivial executions")
    ap.add_argument("--n-humaneval", type=int, default=100, help="HumanEval executions")
    ap.add_argument("--problem", default="HumanEval/0")
    args = ap.parse_args()

    cfg = SandboxConfig()
    isolation = describe_isolation(cfg)
    print(f"isolation: {isolation}")
    print(f"cpus visible: {len(os.sched_getaffinity(0))}, workers: {args.workers}")
    trivial = Program("print('hello')")
    with SandboxPool(workers=args.workers) as pool:
        triv = throughput(pool, trivial, args.n, cfg)
        print(f"trivial:   {triv['exec_per_s']:.1f} exec/s  ({triv})")
        he = throughput(pool, humaneval_program(args.problem), args.n_humaneval, cfg)
        print(f"humaneval: {he['exec_per_s']:.1f} exec/s  ({args.problem}, {he})")
    lat = latency(trivial, cfg)
    print(f"single trivial execution, sequential: {lat} ms median")
    summary = {
        "benchmark": "sandbox",
        "isolation": isolation.split(" ")[0].rstrip(":"),
        "workers": args.workers,
        "trivial_exec_per_s": triv["exec_per_s"],
        "humaneval_exec_per_s": he["exec_per_s"],
        "humaneval_problem": args.problem,
        "trivial_latency_ms": lat,
        "target_trivial_exec_per_s": 20,
        "meets_target": triv["exec_per_s"] >= 20,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
