"""The CPU demo, end to end: pretrain (or reuse) the tiny base -> evaluate it with the R1-Zero
template -> R1-Zero GRPO -> evaluate again -> report (markdown, JSON, PNG) in one run directory.

`run_seeds` (``r1lab demo seeds=[0,1,2]``) runs the demo once per seed into
``<output_dir>/<run_name or demo>-seeds/seed<s>/`` and reports over the seeds (docs/seeds.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from r1lab.eval.report import plot_training_curves, write_report
from r1lab.eval.seeds_report import (
    Contrast,
    SeedSummary,
    plot_seed_arms,
    plot_seed_curves,
    write_seed_report,
)
from r1lab.pipelines import grpo
from r1lab.pipelines.common import load_model, make_run_dir, task_examples
from r1lab.pipelines.heldout import evaluate_model
from r1lab.pipelines.rl_config import RLConfig
from r1lab.pipelines.seeds import run_seeds as run_each_seed
from r1lab.utils.jsonl import read_jsonl

CURVES = (("reward", "train reward"), ("accuracy", "train accuracy"),
          ("response_len_mean", "response length (tokens)"))  # fmt: skip


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


def run_seeds(cfg: RLConfig, seeds, log=print) -> dict:
    """The demo once per seed (``seed=s``; the pretraining and the problems stay fixed), then
    ``report.md/json`` over the seeds, ``seeds.png`` (base vs final) and ``training.png`` (each
    seed thin, the mean bold). A complete seed is reused; a half-finished one is run afresh."""
    from dataclasses import replace

    t0 = time.time()
    root = Path(cfg.output_dir) / f"{cfg.run_name or 'demo'}-seeds"

    def config_of(seed: int) -> RLConfig:
        return replace(cfg, seed=seed, output_dir=str(root), run_name=f"seed{seed}")

    def one(seed: int, sdir: Path) -> dict:
        out = run(config_of(seed), log=log)
        rows = [r for r in read_jsonl(sdir / "metrics.jsonl") if "step" in r]
        keep = ("step", *(key for key, _ in CURVES))
        return {
            "arms": {"base": out["base"], "final": out["final"]},
            "curves": [{key: r[key] for key in keep if key in r} for r in rows],
        }

    runs = run_each_seed(root, seeds, config_of, one, resumable=False, log=log)
    k = cfg.eval.k
    summary = SeedSummary(
        title="r1lab demo (R1-Zero GRPO on the tiny base)",
        seeds=list(seeds),
        per_seed=[r.summary for r in runs],
        arms=["base", "final"],
        metrics=["pass@1", f"cons@{k}", "format_rate", "mean_response_tokens"],
        contrasts=[
            Contrast("base", "final", "pass@1"),
            Contrast("final", "final", "pass@1", f"cons@{k}"),
        ],
        notes=[
            "The seed sets the RL prompt order, the rollout sampling and the sampling of both "
            "evaluations.",
            "The same for every seed: the starting model "
            + (
                f"(tiny, pretrain.seed {cfg.pretrain.seed})"
                if cfg.model.path == "tiny"
                else f"({cfg.model.path})"
            )
            + f", the problems (data.seed {cfg.data.seed}) and the budget ({cfg.grpo.steps} steps).",
        ],  # fmt: skip
    )
    arms = plot_seed_arms(summary, ["pass@1", f"cons@{k}", "format_rate"], root / "seeds.png")
    curves = {key: {"R1-Zero GRPO": [r.summary["curves"] for r in runs]} for key, _ in CURVES}
    training = plot_seed_curves(curves, CURVES, (("step", "step"),), root / "training.png")
    report = write_seed_report(root, summary, "report", [arms.name, training.name])
    log(f"[demo] report over {len(seeds)} seeds ({time.time() - t0:.0f}s): {report['report_md']}")
    return {"run_dir": str(root), "summary": summary, **report}
