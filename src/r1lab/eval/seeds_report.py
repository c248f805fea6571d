"""The report of one experiment over several seeds: per metric and arm the mean over seeds, the
per-seed values, the 95% t-interval over seeds next to the within-run interval over problems;
differences between arms paired by seed, called findings only when their interval over seeds
excludes 0; plots with each seed thin and the mean bold.

Input: one summary per seed, ``{"arms": {arm: {metric: value, ...}}}`` (a metric's within-run
interval over problems is ``<metric>_ci`` = [lo, hi], or ``<metric>_se``). The statistics are
`r1lab.eval.seeds_stats`; which arms, metrics and differences to show is the pipeline's choice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1lab.eval import seeds_stats as S

Z95 = 1.959964  # a standard error -> a 95% normal half-width (the within-run intervals)
INTERVAL_WHY = (
    "95% t-interval over seeds (mean +- t(0.975, n-1) sd / sqrt(n)). Not a bootstrap over seeds: "
    "with 3 seeds a bootstrap has 10 distinct resamples and its interval cannot leave the range "
    "of the 3 values, so it is too narrow; the t-interval pays for few seeds with n-1 degrees of "
    "freedom (t = 4.30 for 3 seeds), which is why it is wide."
)


@dataclass(frozen=True)
class Contrast:
    """Arm B minus arm A on one metric (``metric_b`` defaults to ``metric``), paired by seed."""

    a: str
    b: str
    metric: str
    metric_b: str | None = None

    @property
    def label(self) -> str:
        mb = self.metric_b or self.metric
        if mb != self.metric and self.a == self.b:
            return f"{self.b}: {mb} - {self.metric}"
        return f"{self.b} - {self.a}"


@dataclass
class SeedSummary:
    title: str
    seeds: list[int]
    per_seed: list[dict[str, Any]]  # the summaries, in seed order
    arms: list[str]
    metrics: list[str]  # shown per arm, in this order
    contrasts: list[Contrast] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what varies with the seed, what stays fixed

    def values(self, arm: str, metric: str) -> list[float]:
        return [_num(s.get("arms", {}).get(arm, {}).get(metric)) for s in self.per_seed]

    def within(self, arm: str, metric: str) -> float:
        """Mean over seeds of the within-run 95% half-width over problems (NaN: none recorded)."""
        halves = []
        for s in self.per_seed:
            m = s.get("arms", {}).get(arm, {})
            ci, se = m.get(f"{metric}_ci"), m.get(f"{metric}_se")
            if isinstance(ci, list | tuple) and len(ci) == 2:
                halves.append((float(ci[1]) - float(ci[0])) / 2)
            elif isinstance(se, int | float):
                halves.append(Z95 * float(se))
        return sum(halves) / len(halves) if halves else math.nan

    def stat(self, arm: str, metric: str) -> S.SeedStat:
        return S.over_seeds(self.values(arm, metric))

    def difference(self, c: Contrast) -> S.SeedStat:
        return S.paired_difference(
            self.values(c.a, c.metric), self.values(c.b, c.metric_b or c.metric)
        )


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def _f(x: float) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.3f}"


def _ci(st: S.SeedStat) -> str:
    return "-" if math.isnan(st.lo) else f"[{_f(st.lo)}, {_f(st.hi)}]"


def _signed(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:+.3f}"


def verdict(c: Contrast, d: S.SeedStat) -> str:
    """One sentence: is the difference a finding over these seeds?"""
    what = c.label if c.metric_b else f"{c.label} on {c.metric}"
    if d.n < 2 or math.isnan(d.lo):
        return f"{what}: {_signed(d.mean)} from {d.n} seed(s); no interval over seeds, no finding."
    if S.is_finding(d):
        side = "higher" if d.lo > 0 else "lower"
        return (
            f"{what}: {_signed(d.mean)} [{_signed(d.lo)}, {_signed(d.hi)}]: a finding, B is "
            f"{side} (the interval over {d.n} seeds excludes 0)."
        )
    return (
        f"{what}: {_signed(d.mean)} [{_signed(d.lo)}, {_signed(d.hi)}]: not a finding (the "
        f"interval over {d.n} seeds includes 0; it may be noise)."
    )


def headline(summary: SeedSummary, metric: str) -> list[str]:
    """Short lines for the terminal: `metric` per arm over seeds, then every difference."""
    lines = [
        f"{metric} over {len(summary.seeds)} seeds (mean, 95% t-interval over seeds, per seed):"
    ]
    for arm in summary.arms:
        st = summary.stat(arm, metric)
        vals = " / ".join(_f(v) for v in st.values)
        lines.append(f"  {arm}: {_f(st.mean)} {_ci(st)} ({vals})")
    lines += [f"- {verdict(c, summary.difference(c))}" for c in summary.contrasts]
    return lines


def seed_markdown(summary: SeedSummary, plot_names: Sequence[str] = ()) -> str:
    n, seeds = len(summary.seeds), ", ".join(map(str, summary.seeds))
    lines = [f"# {summary.title} over {n} seeds", "", f"Seeds {seeds}; each seed is a full run."]
    lines += [f"- {note}" for note in summary.notes]
    lines += ["", f"Interval over seeds: {INTERVAL_WHY}", "",
              "Within-run: the mean over seeds of each run's 95% interval over problems "
              "(half-width; bootstrap over problems for pass@1, 1.96 se otherwise).", ""]  # fmt: skip
    per = "per seed (" + ", ".join(map(str, summary.seeds)) + ")"
    lines += [
        f"| metric | arm | mean | 95% interval over seeds | {per} | within-run +- |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for metric in summary.metrics:
        for arm in summary.arms:
            st = summary.stat(arm, metric)
            if all(math.isnan(v) for v in st.values):
                continue
            vals = " / ".join(_f(v) for v in st.values)
            lines.append(
                f"| {metric} | {arm} | {_f(st.mean)} | {_ci(st)} | {vals} | "
                f"{_f(summary.within(arm, metric))} |"
            )
    if summary.contrasts:
        lines += ["", "## Differences, paired by seed", "",
                  "B - A per seed (the arms of one seed share its starting model, problems and "
                  "sampling seed), then the t-interval of those differences. A difference is "
                  "called a finding only when its interval over seeds excludes 0.", "",
                  f"| difference (B - A) | metric | mean | 95% interval over seeds | {per} | "
                  "finding |", "|---|---|---:|---:|---:|---|"]  # fmt: skip
        for c in summary.contrasts:
            d = summary.difference(c)
            metric = c.metric if not c.metric_b else f"{c.metric_b} - {c.metric}"
            lines.append(
                f"| {c.label} | {metric} | {_signed(d.mean)} | {_ci(d)} | "
                f"{' / '.join(_signed(v) for v in d.values)} | "
                f"{'yes' if S.is_finding(d) else 'no'} |"
            )
        lines += ["", *[f"- {verdict(c, summary.difference(c))}" for c in summary.contrasts]]
    lines += ["", *[f"![{name}]({name})" for name in plot_names]]
    return "\n".join(lines).rstrip() + "\n"


def seed_json(summary: SeedSummary) -> dict[str, Any]:
    def stat(st: S.SeedStat) -> dict[str, Any]:
        return {"mean": st.mean, "sd": st.sd, "ci95": [st.lo, st.hi], "per_seed": list(st.values)}

    return {
        "title": summary.title,
        "seeds": summary.seeds,
        "interval": "t over seeds, 95%",
        "notes": summary.notes,
        "metrics": {
            arm: {
                m: {**stat(summary.stat(arm, m)), "within_run_halfwidth": summary.within(arm, m)}
                for m in summary.metrics
            }
            for arm in summary.arms
        },
        "differences": [
            {
                "a": c.a,
                "b": c.b,
                "metric": c.metric,
                "metric_b": c.metric_b or c.metric,
                **stat(d := summary.difference(c)),
                "finding": S.is_finding(d),
            }
            for c in summary.contrasts
        ],  # fmt: skip
        "per_seed": summary.per_seed,
    }


def write_seed_report(
    root: Path, summary: SeedSummary, stem: str = "report", plot_names: Sequence[str] = ()
) -> dict[str, str]:
    """``ROOT/<stem>.md`` and ``ROOT/<stem>.json``; returns their paths."""
    root = Path(root)
    md, js = root / f"{stem}.md", root / f"{stem}.json"
    md.write_text(seed_markdown(summary, plot_names))
    js.write_text(json.dumps(seed_json(summary), indent=1, default=str) + "\n")
    return {"report_md": str(md), "report_json": str(js)}


def _figure(rows: int, cols: int, size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


def _save(fig, out_png: Path) -> Path:
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    return out_png


def plot_seed_arms(summary: SeedSummary, metrics: Sequence[str], out_png: Path) -> Path:
    """One panel per metric, the arms along x: each seed a thin line, the mean bold with its
    interval over seeds as error bars."""
    fig, axes = _figure(1, len(metrics), (4.2 * len(metrics), 3.6))
    xs = list(range(len(summary.arms)))
    for ax, metric in zip(axes[0], metrics):
        stats = [summary.stat(arm, metric) for arm in summary.arms]
        for i, seed in enumerate(summary.seeds):
            ax.plot(xs, [st.values[i] for st in stats], lw=0.8, alpha=0.45, marker=".",
                    label=f"seed {seed}")  # fmt: skip
        means = [st.mean for st in stats]
        err = [[m - st.lo if not math.isnan(st.lo) else 0.0 for m, st in zip(means, stats)],
               [st.hi - m if not math.isnan(st.hi) else 0.0 for m, st in zip(means, stats)]]  # fmt: skip
        ax.errorbar(xs, means, yerr=err, color="black", lw=2.4, marker="o", capsize=4,
                    label=f"mean of {len(summary.seeds)} (95% t over seeds)")  # fmt: skip
        ax.set_xticks(xs, summary.arms, rotation=20, ha="right", fontsize="small")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="x-small")
    return _save(fig, out_png)


def plot_seed_curves(
    curves: Mapping[str, Mapping[str, Sequence[Sequence[Mapping[str, Any]]]]],
    panels: Sequence[tuple[str, str]],
    x_axes: Sequence[tuple[str, str]],
    out_png: Path,
) -> Path:
    """Curves over seeds: ``curves[panel_key][label]`` = one list of points (dicts with the x
    keys and ``panel_key``) per seed. Rows: x axes; columns: panels; a color per label, each
    seed thin, the pointwise mean over seeds bold (`seeds_stats.mean_curve`)."""
    fig, axes = _figure(len(x_axes), len(panels), (4.3 * len(panels), 3.4 * len(x_axes)))
    colors = [f"C{i}" for i in range(10)]
    for row, (x_key, x_label) in zip(axes, x_axes):
        for ax, (key, title) in zip(row, panels):
            for i, (label, per_seed) in enumerate(curves.get(key, {}).items()):
                color = colors[i % len(colors)]
                xy = [[(p[x_key], p[key]) for p in pts if isinstance(p.get(key), int | float)]
                      for pts in per_seed]  # fmt: skip
                xy = [c for c in xy if c]
                for c in xy:
                    ax.plot(*zip(*c), color=color, lw=0.8, alpha=0.35)
                if xy:
                    mx = S.mean_curve([[x for x, _ in c] for c in xy])
                    my = S.mean_curve([[y for _, y in c] for c in xy])
                    ax.plot(mx, my, color=color, lw=2.4, label=f"{label} (mean of {len(xy)})",
                            marker="o" if len(mx) < 30 else None)  # fmt: skip
            ax.set_title(title)
            ax.set_xlabel(x_label)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    return _save(fig, out_png)
