"""The report over seeds on hand-made per-seed summaries: the table's numbers, the within-run
interval next to the interval over seeds, findings in words, the JSON and the plots."""

from __future__ import annotations

import json
import math

import pytest

from r1lab.eval.seeds_report import (
    Contrast,
    SeedSummary,
    plot_seed_arms,
    plot_seed_curves,
    seed_markdown,
    write_seed_report,
)


def summary() -> SeedSummary:
    per_seed = [
        {"arms": {"A": {"pass@1": 0.1, "pass@1_ci": [0.0, 0.2], "cons@4": 0.2, "cons@4_se": 0.05},
                  "B": {"pass@1": 0.3, "pass@1_ci": [0.2, 0.4]}}},
        {"arms": {"A": {"pass@1": 0.2, "pass@1_ci": [0.1, 0.5], "cons@4": 0.1, "cons@4_se": 0.15},
                  "B": {"pass@1": 0.3, "pass@1_ci": [0.1, 0.5]}}},
        {"arms": {"A": {"pass@1": 0.3, "pass@1_ci": [0.2, 0.4], "cons@4": 0.3},
                  "B": {"pass@1": 0.5, "pass@1_ci": [0.4, 0.6]}}},
    ]  # fmt: skip
    return SeedSummary(
        title="t", seeds=[0, 1, 2], per_seed=per_seed, arms=["A", "B"],
        metrics=["pass@1", "cons@4"],
        contrasts=[Contrast("A", "B", "pass@1"), Contrast("B", "A", "pass@1"),
                   Contrast("A", "A", "pass@1", "cons@4")],
        notes=["pretraining fixed"],
    )  # fmt: skip


def test_values_within_run_interval_and_missing_metrics():
    s = summary()
    assert s.values("A", "pass@1") == [0.1, 0.2, 0.3]
    assert math.isnan(s.values("B", "cons@4")[0])  # B has no cons@4
    # within-run: mean over seeds of the half-widths, (0.1 + 0.2 + 0.1) / 3 for A's pass@1
    assert s.within("A", "pass@1") == pytest.approx(0.4 / 3)
    assert s.within("A", "cons@4") == pytest.approx(1.959964 * (0.05 + 0.15) / 2)
    assert math.isnan(s.within("B", "cons@4"))
    assert s.difference(Contrast("A", "B", "pass@1")).values == pytest.approx((0.2, 0.1, 0.2))


def test_markdown_rows_and_findings_in_words():
    md = seed_markdown(summary(), ["x.png"])
    assert "Seeds 0, 1, 2; each seed is a full run." in md and "- pretraining fixed" in md
    assert "| pass@1 | A | 0.200 | [-0.048, 0.448] | 0.100 / 0.200 / 0.300 | 0.133 |" in md
    assert "| cons@4 | B |" not in md  # no values at all: no row
    assert "| B - A | pass@1 | +0.167 | [0.023, 0.310] | +0.200 / +0.100 / +0.200 | yes |" in md
    assert "B - A on pass@1: +0.167 [+0.023, +0.310]: a finding, B is higher" in md
    assert "A - B on pass@1: -0.167 [-0.310, -0.023]: a finding, B is lower" in md
    # cons@4 - pass@1 of A: +0.1, -0.1, 0.0 -> includes 0
    assert "A: cons@4 - pass@1: +0.000 [" in md and "not a finding" in md
    assert "t-interval" in md and "bootstrap" in md and "![x.png](x.png)" in md


def test_json_and_plots(tmp_path):
    paths = write_seed_report(tmp_path, summary(), "report", [])
    doc = json.loads((tmp_path / "report.json").read_text())
    assert paths["report_md"].endswith("report.md")
    a = doc["metrics"]["A"]["pass@1"]
    assert a["per_seed"] == [0.1, 0.2, 0.3] and a["ci95"][0] == pytest.approx(-0.048414, abs=1e-6)
    assert [d["finding"] for d in doc["differences"]] == [True, True, False]
    png = plot_seed_arms(summary(), ["pass@1", "cons@4"], tmp_path / "arms.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    curves = {"r": {"A": [[{"step": 0, "r": 1.0}, {"step": 1, "r": 2.0}], [{"step": 0, "r": 3.0}]]}}
    png = plot_seed_curves(curves, [("r", "reward")], [("step", "step")], tmp_path / "c.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_headline_for_the_terminal():
    from r1lab.eval.seeds_report import headline

    lines = headline(summary(), "pass@1")
    assert lines[1] == "  A: 0.200 [-0.048, 0.448] (0.100 / 0.200 / 0.300)"
    assert lines[3].startswith("- B - A on pass@1: +0.167") and "a finding" in lines[3]
