"""``r1lab compare RECIPE...``: train several RL recipes with the same seed and budget, then put
held-out accuracy, reward and response length side by side (one PNG, one markdown table).

The loop, in reading order: resolve every recipe with the same overrides -> check they share the
seed and the budget (steps, prompts x G, model, data, evaluation) -> evaluate the starting model
on the held-out split once -> for each recipe, sequentially: a fresh copy of the starting model,
`grpo.run` into ``OUT/<recipe>/``, evaluate the trained model -> plot and tabulate.

Held-out accuracy is pass@1 of the R1 protocol (`r1lab.eval.runner`), measured at step 0 and after
the last step; the training reward and response length come from each run's metrics.jsonl per
step and per second of RL wall time. A recipe that the run doctor stops (or whose dynamic
sampling or rewards fail past their limits) is reported as stopped (with its reason) and evaluated
as it is; the other recipes still run.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from r1lab.config import load_config, to_dict
from r1lab.doctor import DoctorReport, TrainingStopped
from r1lab.errors import ConfigError
from r1lab.pipelines import grpo
from r1lab.pipelines.common import load_model, make_run_dir, task_examples
from r1lab.pipelines.heldout import evaluate_model
from r1lab.pipelines.rl_config import RLConfig
from r1lab.pipelines.rollouts import DynamicSamplingExhausted
from r1lab.rewards.combine import RewardErrorRateExceeded
from r1lab.utils.jsonl import read_jsonl

# config parts every compared recipe must share: the seed and the budget
SHARED = ("seed", "grpo.steps", "grpo.prompts_per_step", "grpo.group_size", "sampling.max_new_tokens",
          "model", "pretrain", "data", "eval")  # fmt: skip
_STYLES = ("-", "--", ":", "-.")
PANELS = (
    ("heldout_pass@1", "held-out pass@1"),
    ("reward", "train reward"),
    ("response_len_mean", "response length (tokens)"),
)


@dataclass
class RecipeRun:
    name: str
    run_dir: Path
    rows: list[dict[str, Any]]
    base: dict[str, Any]  # held-out metrics of the starting model
    final: dict[str, Any]  # held-out metrics after training
    rl_seconds: float
    stopped: str | None = None  # the run doctor's reason when it stopped the run
    stopped_check: str | None = None
    doctor: DoctorReport | None = None


@dataclass
class CompareResult:
    out_dir: Path
    runs: list[RecipeRun]
    plot: Path
    table: Path
    wall_seconds: float
    settings: dict[str, Any] = field(default_factory=dict)


def resolve(recipes: Sequence[str], overrides: Sequence[str] = (), steps: int | None = None):
    """[(label, RLConfig)] for the recipes with the same overrides; checks seed and budget."""
    if not recipes:
        raise ConfigError("compare needs at least one recipe")
    extra = [*overrides, *([f"grpo.steps={steps}"] if steps is not None else [])]
    out: list[tuple[str, RLConfig]] = []
    for recipe in recipes:
        label = Path(recipe).stem
        if label in [name for name, _ in out]:
            raise ConfigError(f"recipe {label!r} is listed twice; compare each recipe once")
        out.append((label, load_config(RLConfig, recipe, list(extra))))
    first_name, first = out[0]
    for name, cfg in out[1:]:
        for key in SHARED:
            a, b = _get(first, key), _get(cfg, key)
            if a != b:
                raise ConfigError(
                    f"recipes {first_name!r} and {name!r} differ in {key} ({_short(a)} vs "
                    f"{_short(b)}): compare needs the same seed and budget; set it for all with "
                    f"an override such as {key}=..."
                )
    return out


def run(
    recipes: Sequence[str],
    *,
    overrides: Sequence[str] = (),
    steps: int | None = None,
    out_dir: Path | None = None,
    model=None,
    tokenizer=None,
    log=print,
) -> CompareResult:
    """Train and evaluate each recipe; write ``compare.png``, ``compare.md`` and ``compare.json``.

    `model`/`tokenizer` (optional) is the starting model, else ``model.path`` is loaded once (the
    cached tiny base for ``tiny``); each recipe trains its own deep copy of it.
    """
    t0 = time.time()
    cfgs = resolve(recipes, overrides, steps)
    first = cfgs[0][1]
    if first.threads:  # before the first evaluation (grpo.run sets it again, to the same value)
        torch.set_num_threads(first.threads)
    out_dir = Path(out_dir or Path(first.output_dir) / f"compare-{time.strftime('%Y%m%d-%H%M%S')}")
    out_dir.mkdir(parents=True, exist_ok=True)
    test = task_examples(first.data, "test")
    if model is None:
        model, tokenizer = _load(first, log)
    log(
        f"[compare] held-out evaluation of the starting model: {len(test)} problems x {first.eval.k}"
    )
    base = evaluate_model(first, model, tokenizer, test, out_dir / "eval_base.jsonl", first.seed)
    runs = []
    for i, (name, cfg) in enumerate(cfgs):
        log(f"[compare] {i + 1}/{len(cfgs)} {name}: {cfg.grpo.steps} steps")
        start = copy.deepcopy(model)  # every recipe starts from the same weights
        runs.append(_train_and_eval(name, cfg, start, tokenizer, test, base.metrics, out_dir, log))
    settings = _settings(first, test)
    plot = plot_compare(runs, out_dir / "compare.png")
    table = out_dir / "compare.md"
    table.write_text(markdown_report(runs, settings, plot.name))
    (out_dir / "compare.json").write_text(
        json.dumps(_as_json(runs, settings), indent=1, default=str)
    )
    return CompareResult(out_dir, runs, plot, table, time.time() - t0, settings)


def _train_and_eval(name, cfg, model, tokenizer, test, base, out_dir: Path, log) -> RecipeRun:
    run_dir = make_run_dir(str(out_dir), name, "rl", cfg)  # writes the resolved config.yaml
    t0 = time.time()
    stopped = stopped_check = None
    try:
        grpo.run(cfg, run_dir=run_dir, model=model, tokenizer=tokenizer, log=log)
    except TrainingStopped as exc:
        stopped, stopped_check = str(exc), exc.finding.check
        log(f"[compare] {name}: {stopped}")
    except (DynamicSamplingExhausted, RewardErrorRateExceeded) as exc:
        # the run cannot go on, but the other recipes can: report this one as stopped
        stopped = str(exc)
        stopped_check = (
            "dynamic_sampling" if isinstance(exc, DynamicSamplingExhausted) else "reward_errors"
        )
        log(f"[compare] {name}: stopped: {stopped}")
    rl_seconds = time.time() - t0
    rows = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "step" in r]
    final = evaluate_model(cfg, model, tokenizer, test, run_dir / "eval_final.jsonl", cfg.seed)
    doctor = DoctorReport.load(run_dir) if (run_dir / "doctor.json").exists() else None
    log(
        f"[compare] {name}: held-out pass@1 {base['pass@1']:.3f} -> "
        f"{final.metrics['pass@1']:.3f} in {rl_seconds:.0f}s of RL"
    )
    return RecipeRun(
        name, run_dir, rows, base, final.metrics, rl_seconds, stopped, stopped_check, doctor
    )


def _load(cfg: RLConfig, log):
    return load_model(
        cfg.model.path, pretrain_cfg=cfg.pretrain, dtype=cfg.model.dtype, device=cfg.model.device,
        progress=cfg.progress, log=log,
    )  # fmt: skip


def _get(cfg: RLConfig, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return to_dict(node)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _settings(cfg: RLConfig, test) -> dict[str, Any]:
    g = cfg.grpo
    return {
        "seed": cfg.seed,
        "steps": g.steps,
        "prompts_per_step": g.prompts_per_step,
        "group_size": g.group_size,
        "max_new_tokens": cfg.sampling.max_new_tokens,
        "model": cfg.model.path,
        "tasks": list(cfg.data.tasks),
        "heldout_problems": len(test),
        "eval_k": cfg.eval.k,
    }


# -- curves, table, plot -------------------------------------------------------------------------


def heldout_points(run: RecipeRun) -> list[dict[str, float]]:
    """Held-out pass@1 as curve points: at step 0 / second 0, after every ``eval.every`` steps
    (the rows that carry ``heldout_pass@1``), and after the last step."""
    last_step = run.rows[-1]["step"] + 1 if run.rows else 0
    points = [{"step": 0, "elapsed": 0.0, "heldout_pass@1": run.base["pass@1"]}]
    for r in run.rows:
        if "heldout_pass@1" in r and r["step"] + 1 < last_step:
            points.append(
                {
                    "step": r["step"] + 1,
                    "elapsed": r["elapsed"],
                    "heldout_pass@1": r["heldout_pass@1"],
                }
            )
    points.append(
        {"step": last_step, "elapsed": run.rl_seconds, "heldout_pass@1": run.final["pass@1"]}
    )
    return points


def tail_mean(rows: Sequence[dict[str, Any]], key: str, frac: float = 0.1) -> float:
    """Mean of ``key`` over the last ``frac`` of the rows (at least one): the end-of-run level."""
    vals = [float(r[key]) for r in rows if isinstance(r.get(key), int | float)]
    if not vals:
        return math.nan
    n = max(1, math.ceil(frac * len(vals)))
    return sum(vals[-n:]) / n


def summary_row(run: RecipeRun) -> dict[str, Any]:
    doctor = "-" if run.doctor is None else f"{run.doctor.num_warnings} warnings"
    if run.stopped:
        doctor = f"STOPPED ({run.stopped_check})"
    return {
        "recipe": run.name,
        "steps": len(run.rows),
        "heldout_pass@1_base": run.base["pass@1"],
        "heldout_pass@1": run.final["pass@1"],
        "heldout_pass@1_se": run.final.get("pass@1_se", math.nan),
        "heldout_format_rate": run.final.get("format_rate", math.nan),
        "train_reward": tail_mean(run.rows, "reward"),
        "train_accuracy": tail_mean(run.rows, "accuracy"),
        "response_len": tail_mean(run.rows, "response_len_mean"),
        "truncation_rate": tail_mean(run.rows, "truncation_rate"),
        "rl_seconds": run.rl_seconds,
        "doctor": doctor,
    }


def markdown_report(runs: Sequence[RecipeRun], settings: dict[str, Any], plot_name: str) -> str:
    head = (
        "| recipe | steps | held-out pass@1 (start -> end) | +- se | held-out format | "
        "train reward* | train accuracy* | response len* | truncated* | RL time (s) | doctor |"
    )
    lines = [
        "# r1lab compare",
        "",
        "Same seed and budget for every recipe: "
        + ", ".join(f"{k} {v}" for k, v in settings.items())
        + ".",
        "",
        head,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        r = summary_row(run)
        lines.append(
            f"| {r['recipe']} | {r['steps']} | {r['heldout_pass@1_base']:.3f} -> "
            f"{r['heldout_pass@1']:.3f} | {r['heldout_pass@1_se']:.3f} | "
            f"{r['heldout_format_rate']:.3f} | {r['train_reward']:.3f} | "
            f"{r['train_accuracy']:.3f} | {r['response_len']:.1f} | {r['truncation_rate']:.3f} | "
            f"{r['rl_seconds']:.0f} | {r['doctor']} |"
        )
    lines += [
        "",
        "\\* mean over the last 10% of steps (at least one).",
        "",
        f"![held-out accuracy, reward and response length per step and per second]({plot_name})",
        "",
    ]
    lines += [f"- **{run.name}** stopped: {run.stopped}" for run in runs if run.stopped]
    return "\n".join(lines).rstrip() + "\n"


def plot_compare(runs: Sequence[RecipeRun], out_png: Path) -> Path:
    """Rows: against step, against RL wall time; columns: held-out pass@1, reward, length."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 7), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(PANELS), squeeze=False)
    for row_axes, (x_key, x_label) in zip(
        axes, (("step", "step"), ("elapsed", "RL wall time (s)"))
    ):
        for ax, (key, title) in zip(row_axes, PANELS):
            for i, run in enumerate(runs):
                pts = heldout_points(run) if key.startswith("heldout") else run.rows
                xy = [(p[x_key], p[key]) for p in pts if isinstance(p.get(key), int | float)]
                if xy:  # distinct line styles keep recipes that overlap visible
                    ax.plot(*zip(*xy), label=run.name, linestyle=_STYLES[i % len(_STYLES)],
                            marker="o" if len(xy) < 30 else None, alpha=0.85)  # fmt: skip
            ax.set_title(title)
            ax.set_xlabel(x_label)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    return out_png


def _as_json(runs: Sequence[RecipeRun], settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "settings": settings,
        "runs": [
            {
                **summary_row(run),
                "run_dir": str(run.run_dir),
                "stopped": run.stopped,
                "heldout_base": run.base,
                "heldout_final": run.final,
            }
            for run in runs
        ],
    }
