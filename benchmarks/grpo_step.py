"""GRPO step speed on CPU: r1lab vs TRL 1.16's `GRPOTrainer`, alternating, on identical weights (issue 8).

Workload: ``docs/grpo_cpu_workload.md`` (tiny random Qwen2, character tokenizer, 8 addition
prompts x 8 samples per step, fixed-length completions, beta 0.04 with a reference model, lr 1e-4,
2 warm-up + 10 timed steps), in the named configurations ``small`` and ``large``.

What it does: sets up TRL's own environment (``benchmarks/setup_trl.sh`` -> ``benchmarks/.venv-trl``;
TRL is never a dependency of r1lab), builds each configuration's initial model once
(``save_pretrained`` + ``tokenizer.json``), then runs r1lab's side (``r1lab_grpo_cpu.py``, this
venv) and TRL's side (``trl_grpo_cpu.py``, ``.venv-trl``) as subprocesses, alternating
A B A B, ``--rounds`` times each, and measures the large-GEMM FLOP rate of the faster of
``torch.matmul`` (MKL) and oneDNN (both ship in the PyTorch wheel; `grpo_workload.gemm_rates`).

Figures per configuration and side (medians over rounds of each run's median step):
``step_s_median``, ``gen_tokens_per_s``, ``peak_rss_mib``, ``other_procs_cores`` (CPU used by other
processes during the timed steps; above ~0.3 the run was disturbed), plus ``speedup`` = TRL step
time / r1lab step time, and ``roofline_fraction`` = (workload FLOPs per step / measured GEMM
FLOP/s) / step time for each side. Every run's full JSON is kept under ``runs``.

Run: ``.venv/bin/python benchmarks/grpo_step.py [--configs small large] [--rounds 2] [--quick]``.
The last line of the output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpo_workload as wl
import torch

HERE = Path(__file__).resolve().parent
TRL_PY = HERE / ".venv-trl" / "bin" / "python"


def side_cmd(side: str, config: str, workdir: Path, a: argparse.Namespace) -> list[str]:
    py = str(TRL_PY) if side == "trl" else sys.executable
    script = HERE / ("trl_grpo_cpu.py" if side == "trl" else "r1lab_grpo_cpu.py")
    return [
        py,
        str(script),
        "--config",
        config,
        "--workdir",
        str(workdir),
        "--threads",
        str(a.threads),
        "--steps",
        str(a.steps),
        "--warmup-steps",
        str(a.warmup_steps),
        *(["--phases"] if a.phases else []),
    ]


def run_side(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-2000:]
        raise SystemExit(f"{' '.join(cmd[:2])} failed (rc {proc.returncode}):\n{tail}")
    return json.loads(lines[-1])


def summarize(runs: dict[str, list[dict]], flops: float, gemm: float) -> dict:
    out: dict = {}
    for side, rs in runs.items():
        step = statistics.median(r["step_s_median"] for r in rs)
        out[side] = {
            "step_s_median": step,
            "step_s_per_round": [r["step_s_median"] for r in rs],
            "gen_tokens_per_s": statistics.median(r["gen_tokens_per_s"] for r in rs),
            "generate_s_median": statistics.median(r["generate_s_median"] for r in rs),
            "rollout_s_median": statistics.median(r["rollout_s_median"] for r in rs),
            "train_s_median": statistics.median(r["train_s_median"] for r in rs),
            "cpu_s_per_step_median": statistics.median(r["cpu_s_per_step_median"] for r in rs),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in rs),
            **{k: statistics.median(r[k] for r in rs) for k in rs[0] if k.startswith("phase_")},
            "other_procs_cores": max(r["other_procs_cores"] for r in rs),
            "roofline_fraction": flops / gemm / step,
        }
    out["speedup"] = out["trl"]["step_s_median"] / out["r1lab"]["step_s_median"]
    out["speedup_cpu_s"] = (
        out["trl"]["cpu_s_per_step_median"] / out["r1lab"]["cpu_s_per_step_median"]
    )
    out["flops_per_step"] = flops
    out["roofline_step_s"] = flops / gemm
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", choices=sorted(wl.CONFIGS), default=["small", "large"])
    ap.add_argument("--rounds", type=int, default=2, help="runs of each side per configuration")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup-steps", type=int, default=2)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads in both sides (0 = torch's default). 1 by default: on a shared 2-core "
        "box, 2 OpenMP threads next to other load stall (measured 10-100x slower steps)",
    )
    ap.add_argument("--phases", action="store_true", help="time each phase (phase_timer.py)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round, 3 timed steps, small")
    ap.add_argument("--workdir", default=None, help="keep the initial models here")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.steps, a.warmup_steps = 1, 3, 1
        a.configs = ["small"] if a.configs == ["small", "large"] else a.configs
    subprocess.run(["bash", str(HERE / "setup_trl.sh")], check=True)

    if a.threads:
        torch.set_num_threads(a.threads)
    gemm_by_kernel = wl.gemm_rates()
    gemm = max(gemm_by_kernel.values())
    tmp = None if a.workdir else tempfile.TemporaryDirectory()
    root = Path(a.workdir or tmp.name)
    result: dict = {
        "benchmark": "grpo_step",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": __import__("os").cpu_count(),
        "threads": a.threads or torch.get_num_threads(),
        "rounds": a.rounds,
        "steps_timed": a.steps,
        "gemm_flops_per_s": gemm,
        "gemm_flops_per_s_by_kernel": gemm_by_kernel,
        "configs": {},
        "runs": {},
    }
    t0 = time.time()
    for config in a.configs:
        ap_w = argparse.ArgumentParser()
        wl.add_workload_args(ap_w)
        wargs = wl.resolve(ap_w.parse_args(["--config", config]))
        workdir = root / config
        wl.init_model_dir(wargs, workdir)  # both sides load these identical weights
        runs: dict[str, list[dict]] = {"r1lab": [], "trl": []}
        for rnd in range(a.rounds):
            for side in ("r1lab", "trl") if rnd % 2 == 0 else ("trl", "r1lab"):
                r = run_side(side_cmd(side, config, workdir, a))
                runs[side].append(r)
                print(
                    f"[{config} round {rnd + 1}] {side:5s} step {r['step_s_median']:.3f}s "
                    f"(cpu {r['cpu_s_per_step_median']:.3f}s) gen {r['gen_tokens_per_s']:.0f} tok/s "
                    f"rss {r['peak_rss_mib']:.0f} MiB "
                    f"other procs {r['other_procs_cores']:.2f} cores",
                    flush=True,
                )
        s = summarize(runs, wl.flops_per_step(wargs), gemm)
        result["configs"][config] = s
        result["runs"][config] = runs
        print(
            f"[{config}] r1lab {s['r1lab']['step_s_median']:.3f}s  trl {s['trl']['step_s_median']:.3f}s"
            f"  speedup {s['speedup']:.2f}x  roofline r1lab {s['r1lab']['roofline_fraction']:.2f}"
            f" trl {s['trl']['roofline_fraction']:.2f}",
            flush=True,
        )
    result["wall_s"] = time.time() - t0
    if tmp is not None:
        tmp.cleanup()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
