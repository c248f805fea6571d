"""Reports of evaluations and training runs: report.json, report.md (markdown tables), PNG plots.

`write_report` puts several evaluations side by side (``base`` vs ``final``, or benchmarks);
`compare_runs` builds one table over the report.json of several run directories (what
``r1lab report RUN...`` prints); `plot_training_curves` draws metrics.jsonl series per step.
Plots use matplotlib's Agg canvas directly, so no display and no global backend switch is needed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from r1lab.data.loaders import read_text_file
from r1lab.errors import DataError
from r1lab.eval.results import EvalResult
from r1lab.utils.jsonl import read_jsonl

# Metrics shown first, in this order; the rest follow sorted by name.
_FIRST = ("pass@1", "pass@1_se", "pass@1_ci")
_LATER = (
    "format_rate",
    "truncation_rate",
    "no_answer_rate",
    "mean_response_tokens",
    "reward_mean",
    "grading_errors",
    "num_problems",
    "k",
)


def _metrics_of(section: EvalResult | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(section, EvalResult):
        return dict(section.metrics)
    if isinstance(section, Mapping):
        return dict(section)
    raise DataError(
        f"a report section must be an EvalResult or a dict, got {type(section).__name__}"
    )


def metric_order(names: Iterable[str]) -> list[str]:
    names = set(names)

    def rank(name: str) -> tuple:
        if name in _FIRST:
            return (0, _FIRST.index(name), 0, name)
        if name.startswith(("cons@", "pass@")):
            head, _, rest = name.partition("@")
            num = "".join(ch for ch in rest if ch.isdigit())
            return (1, head != "cons", int(num or 0), name)
        if name in _LATER:
            return (2, _LATER.index(name), 0, name)
        return (3, 0, 0, name)

    return sorted(names, key=rank)


def fmt_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) for v in value)
    ):
        return f"[{value[0]:.3f}, {value[1]:.3f}]"
    return str(value)


def metrics_table(columns: Mapping[str, Mapping[str, Any]]) -> str:
    """A markdown table: one row per metric, one column per named metrics dict."""
    names = metric_order({m for metrics in columns.values() for m in metrics})
    head = "| metric | " + " | ".join(columns) + " |"
    sep = "|---|" + "---:|" * len(columns)
    rows = [
        f"| {name} | " + " | ".join(fmt_value(c.get(name)) for c in columns.values()) + " |"
        for name in names
    ]
    return "\n".join([head, sep, *rows])


def write_report(
    run_dir: Path,
    sections: Mapping[str, EvalResult | Mapping[str, Any]],
    extra: Mapping[str, Any] | None = None,
    *,
    title: str = "r1lab evaluation report",
    examples_per_section: int = 2,
) -> dict[str, str]:
    """Write ``report.json`` and ``report.md`` into `run_dir`; returns their paths.

    report.json: ``{"title", "created", "sections": {name: metrics}, "extra": {...}}``.
    report.md: the metrics table (sections side by side), the `extra` facts, and for each
    `EvalResult` section a few sample completions (one correct, one wrong when there are).
    """
    if not sections:
        raise DataError("write_report needs at least one section")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = {name: _metrics_of(sec) for name, sec in sections.items()}
    extra = dict(extra or {})
    created = time.strftime("%Y-%m-%d %H:%M:%S")
    doc = {"title": title, "created": created, "sections": metrics, "extra": extra}
    json_path = run_dir / "report.json"
    json_path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    lines = [f"# {title}", "", f"Created {created}.", "", metrics_table(metrics), ""]
    if extra:
        lines += ["## Run facts", ""]
        lines += [f"- **{key}**: {fmt_value(value)}" for key, value in extra.items()]
        lines.append("")
    for name, sec in sections.items():
        if isinstance(sec, EvalResult) and sec.samples and examples_per_section > 0:
            lines += _sample_block(name, sec.samples, examples_per_section)
    md_path = run_dir / "report.md"
    md_path.write_text("\n".join(lines))
    return {"report_json": str(json_path), "report_md": str(md_path)}


def _sample_block(name: str, samples: Sequence[dict[str, Any]], n: int) -> list[str]:
    picks = [next((s for s in samples if s.get("correct")), None)]
    picks.append(next((s for s in samples if not s.get("correct")), None))
    picks = [p for p in picks if p is not None][:n]
    out = [f"## Samples: {name}", ""]
    for s in picks:
        verdict = "correct" if s.get("correct") else "wrong"
        out += [
            f"<details><summary>{s.get('problem_id')} #{s.get('sample_index')}: {verdict}, "
            f"extracted {s.get('extracted')!r}, gold {s.get('gold')!r}</summary>",
            "",
            "```text",
            str(s.get("prompt", "")) + str(s.get("completion", "")),
            "```",
            "</details>",
            "",
        ]
    return out


def compare_runs(run_dirs: Sequence[Path | str]) -> str:
    """One markdown table over the ``report.json`` of each run directory.

    Columns are ``<run dir name>/<section>`` (just the run name when it has one section).
    """
    if not run_dirs:
        raise DataError("compare_runs needs at least one run directory")
    columns: dict[str, dict[str, Any]] = {}
    for run in map(Path, run_dirs):
        path = run / "report.json" if run.is_dir() else run
        if not path.exists():
            raise DataError(f"{path}: no report.json (run the evaluation first, or pass a run dir)")
        try:
            sections = json.loads(read_text_file(path))["sections"]
            if not isinstance(sections, dict):
                raise TypeError("'sections' is not a mapping")
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: not an r1lab report ({exc})") from None
        label = path.parent.name
        for name, metrics in sections.items():
            col = label if len(sections) == 1 else f"{label}/{name}"
            columns[col] = metrics
    return metrics_table(columns)


def plot_series(
    rows: Sequence[Mapping[str, Any]],
    out_png: Path,
    keys: Sequence[str],
    *,
    x_key: str = "step",
    title: str = "",
) -> Path:
    """One panel per key present in `rows`, plotted against `x_key`; returns `out_png`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    present = [k for k in keys if any(isinstance(r.get(k), int | float) for r in rows)]
    if not present:
        raise DataError(f"none of the keys {list(keys)} has numeric values to plot")
    fig = Figure(figsize=(4.0 * len(present), 3.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(present), squeeze=False)[0]
    for ax, key in zip(axes, present):
        pts = [(r[x_key], r[key]) for r in rows if isinstance(r.get(key), int | float)]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="." if len(pts) < 50 else None)
        ax.set_title(key)
        ax.set_xlabel(x_key)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    return out_png


def plot_training_curves(
    metrics_jsonl: Path,
    out_png: Path,
    keys: Sequence[str] = ("reward", "accuracy", "response_len_mean"),
) -> Path:
    """Plot the per-step `keys` of a run's metrics.jsonl (rows with ``step``) into `out_png`."""
    path = Path(metrics_jsonl)
    if not path.exists():
        raise DataError(f"{path}: no such metrics file")
    rows = [r for r in read_jsonl(path) if "step" in r]
    if not rows:
        raise DataError(f"{path}: no rows with a 'step' key")
    return plot_series(rows, out_png, keys, title=path.parent.name)


def plot_histogram(values: Sequence[float], out_png: Path, *, label: str, bins: int = 30) -> Path:
    """A histogram of `values` (e.g. response lengths in tokens) into `out_png`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not values:
        raise DataError(f"no values to plot for {label}")
    fig = Figure(figsize=(5, 3.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.hist(values, bins=bins)
    ax.set_xlabel(label)
    ax.set_ylabel("count")
    ax.grid(alpha=0.3)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    return out_png


def plot_trace_by_step(
    samples_jsonl: Path,
    out_png: Path,
    keys: Sequence[str] = ("reflect/any", "reflect/wait", "lang_mix_rate", "len_mean"),
    **stats_kw: Any,
) -> Path:
    """Trace analytics of a training run's samples.jsonl per step (the "aha moment" curves)."""
    from r1lab.eval.analytics import trace_stats_by_step

    rows = trace_stats_by_step(samples_jsonl, **stats_kw)
    return plot_series(rows, out_png, keys, title=f"{Path(samples_jsonl).parent.name}: traces")


def print_summary(
    sections: Mapping[str, EvalResult | Mapping[str, Any]],
    *,
    title: str = "r1lab eval",
    max_rows: int = 12,
) -> None:
    """A short rich table of the headline metrics (pass@1 with its interval, cons@k, ...)."""
    from rich.console import Console
    from rich.table import Table

    metrics = {name: _metrics_of(sec) for name, sec in sections.items()}
    table = Table(title=title)
    table.add_column("metric")
    for name in metrics:
        table.add_column(name, justify="right")
    names = [n for n in metric_order({m for ms in metrics.values() for m in ms}) if "/" not in n]
    for name in names[:max_rows]:
        table.add_row(name, *(fmt_value(ms.get(name)) for ms in metrics.values()))
    Console().print(table)
