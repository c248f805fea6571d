"""The GPU check: the paths that only a CUDA machine exercises, in one run of a few minutes.

On a machine with one CUDA GPU, PyTorch, transformers and PEFT (no vLLM, no network needed):

1. ``demo``   the tiny R1-Zero demo (pretrained base -> eval -> GRPO -> eval) with
              ``model.device=cuda model.dtype=bfloat16``;
2. ``sft``    SFT steps on the GPU in bf16 (a small chat file written here);
3. ``lora``   GRPO steps with LoRA adapters on the GPU (the reference is the base, adapters off);
4. ``nccl``   a 1-rank ``torchrun`` GRPO run with ``dist.backend=nccl``.

Each check is a subprocess of ``python -m r1lab.cli`` (the same entry point users call); its exit
code, wall time and the figures its run directory holds go into ONE JSON line, printed last.
``--dry-run`` prints the commands without running anything (what the CPU test checks).
The exit code is 0 when every check passed, 1 when one failed, 2 for bad arguments or no GPU.

Usage: ``bash scripts/gpu_check.sh [--out DIR] [--steps N] [--only demo,sft,...] [--dry-run]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ("demo", "sft", "lora", "nccl")
GPU = ["model.device=cuda", "model.dtype=bfloat16", "progress=false"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/gpu_check", help="run directories go here")
    p.add_argument("--steps", type=int, default=30, help="GRPO steps of the demo (default 30)")
    p.add_argument("--only", default=",".join(CHECKS), help=f"comma list of {', '.join(CHECKS)}")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = p.parse_args(argv)
    only = tuple(c for c in args.only.split(",") if c)
    unknown = [c for c in only if c not in CHECKS]
    if unknown or not only:
        p.error(f"--only: unknown check(s) {unknown or '(none given)'}; known: {', '.join(CHECKS)}")
    if args.steps < 1:
        p.error(f"--steps must be a positive integer, got {args.steps}")
    args.only = only
    return args


def sft_rows(n: int = 64) -> list[dict]:
    """Chat rows with a worked answer in the R1 format (content is arithmetic, a few tokens)."""
    rows = []
    for i in range(n):
        a, b = 3 + i % 17, 5 + (7 * i) % 23
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"What is {a} + {b}?"},
                    {
                        "role": "assistant",
                        "content": f"<think>{a} + {b} = {a + b}</think><answer>{a + b}</answer>",
                    },
                ]
            }
        )
    return rows


def commands(args: argparse.Namespace, out: Path) -> dict[str, list[str]]:
    """The command line of each selected check."""
    py = [sys.executable, "-m", "r1lab.cli"]
    run = lambda name: [f"output_dir={out}", f"run_name={name}"]  # noqa: E731
    cmds = {
        "demo": py + ["demo", "r1_zero_tiny", *GPU, f"grpo.steps={args.steps}", *run("demo")],
        "sft": py
        + ["sft", f"data.train_file={out / 'sft.jsonl'}", "train.max_steps=4", *GPU, *run("sft")]
        + ["model.path=tiny"],
        "lora": py
        + ["rl", "r1_zero_tiny", "lora.enabled=true", "lora.r=8", "grpo.steps=3", *GPU]
        + run("lora"),
        "nccl": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1"]
        + ["-m", "r1lab.cli", "rl", "r1_zero_tiny", "dist.backend=nccl", "grpo.steps=2", *GPU]
        + run("nccl"),
    }
    return {k: v for k, v in cmds.items() if k in args.only}


def figures(name: str, run_dir: Path) -> dict:
    """What a finished check's run directory says (report.json / metrics.jsonl)."""
    if name == "demo" and (run_dir / "report.json").is_file():
        r = json.loads((run_dir / "report.json").read_text())
        keys = ("pass@1", "format_rate")
        return {
            **{f"base_{k}": r["base"][k] for k in keys},
            **{f"final_{k}": r["final"][k] for k in keys},
            "rl_seconds": r.get("rl_seconds"),
        }
    rows = []
    if (run_dir / "metrics.jsonl").is_file():
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
    if not rows:
        return {}
    last = rows[-1]
    keep = ("loss", "train_loss", "reward", "accuracy", "grad_norm", "kl")
    out = {k: last[k] for k in keep if isinstance(last.get(k), int | float)}
    out["metric_rows"] = len(rows)
    if name == "lora":
        out["adapter_saved"] = (run_dir / "checkpoint" / "adapter").is_dir()
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    cmds = commands(args, out)
    if args.dry_run:
        for name, cmd in cmds.items():
            print(f"{name}: {' '.join(cmd)}")
        return 0
    import torch  # after argument handling: --help and --dry-run need no torch

    if not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA GPU visible (torch.cuda.is_available() is False)", file=sys.stderr
        )
        return 2
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sft_rows()))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    result: dict = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "bf16_supported": torch.cuda.is_bf16_supported(),
    }
    try:
        import transformers

        result["transformers"] = transformers.__version__
    except ImportError:
        result["transformers"] = None
    t_all = time.time()
    for name, cmd in cmds.items():
        print(f"[gpu_check] {name}: {' '.join(cmd)}", flush=True)
        t0 = time.time()
        with open(out / f"{name}.log", "w") as logf:
            rc = subprocess.call(cmd, cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT)
        wall = round(time.time() - t0, 1)
        tail = (out / f"{name}.log").read_text().splitlines()[-15:]
        print("\n".join(f"  | {line}" for line in tail), flush=True)
        result[name] = {"rc": rc, "wall_s": wall, **figures(name, out / name)}
    result["wall_s"] = round(time.time() - t_all, 1)
    result["passed"] = all(result[n]["rc"] == 0 for n in cmds)
    print(json.dumps(result))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
