"""The CPU demo, end to end: pretrain (or reuse) the tiny base -> evaluate it with the R1-Zero
template -> R1-Zero GRPO -> evaluate again -> report (markdown, JSON, PNG) in one run directory."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from r1lab.eval.report import plot_training_curves, write_report
from r1lab.pipelines import grpo
from r1lab.pipelines.common import load_model, make_run_dir, task_examples
from r1lab.pipelines.heldout import evaluate_model
from r1lab.pipelines.rl_config import RLConfig


def run(cfg: RLConfig, log=print) -> dict:
    t0 = time.time()
    run_dir = make_run_dir(cfg.output_dir, cfg.run_name, "demo", cfg)
    log(f"[demo] run directory: {run_dir}")
    model, tokenizer = load_model(
        cfg.model.path,
        pretrain_cfg=cfg.pretrain,
        dtype=cfg.model.dtype,
        device=cfg.model.device,
        progress=cfg.progress,
    )
    test = task_examples(cfg.data, "test")
    log(f"[demo] evaluating the base model on {len(test)} held-out problems x {cfg.eval.k}")
    base = evaluate_model(cfg, model, tokenizer, test, run_dir / "eval_base.jsonl", cfg.seed)
    log(
        f"[demo] base: pass@1 {base.metrics['pass@1']:.3f}, format {base.metrics['format_rate']:.3f}"
    )
    log(f"[demo] R1-Zero GRPO: {cfg.grpo.steps} steps")
    rl = grpo.run(cfg, run_dir=run_dir, model=model, tokenizer=tokenizer, log=log)
    final = evaluate_model(cfg, model, tokenizer, test, run_dir / "eval_final.jsonl", cfg.seed)
    wall = time.time() - t0
    paths = write_report(
        run_dir,
        {"base": base, "final": final},
        extra={"wall_seconds": round(wall, 1), "rl_seconds": round(rl.wall_seconds, 1)},
    )
    promote_sections(run_dir / "report.json", wall)
    plot = plot_training_curves(run_dir / "metrics.jsonl", run_dir / "training.png")
    print_summary(base.metrics, final.metrics, cfg.eval.k, wall, run_dir, rl.checkpoint, plot)
    return {"run_dir": str(run_dir), "base": base.metrics, "final": final.metrics, **paths}


def promote_sections(report_json: Path, wall: float) -> None:
    """Scripts read ``report["base"]["pass@1"]`` and ``report["wall_seconds"]`` directly."""
    report = json.loads(report_json.read_text())
    for name, metrics in report.get("sections", {}).items():
        report.setdefault(name, metrics)
    report["wall_seconds"] = round(wall, 1)
    report_json.write_text(json.dumps(report, indent=1))


def print_summary(base: dict, final: dict, k: int, wall: float, run_dir, ckpt, plot) -> None:
    table = Table(title=f"r1lab demo: held-out results ({wall / 60:.1f} min)")
    table.add_column("metric")
    table.add_column("base", justify="right")
    table.add_column("after R1-Zero RL", justify="right")
    for key in ("pass@1", f"cons@{k}", "format_rate", "mean_response_tokens"):
        if key in base:
            table.add_row(key, f"{base[key]:.3f}", f"{final[key]:.3f}")
    console = Console()
    console.print(table)
    console.print(f"report:     {run_dir / 'report.md'}  ({run_dir / 'report.json'})")
    console.print(f"plot:       {plot}")
    console.print(f"checkpoint: {ckpt}")
