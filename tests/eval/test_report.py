"""Reports: report.json / report.md side by side, run comparison, PNG plots."""

from __future__ import annotations

import json

import pytest

from r1lab.errors import DataError
from r1lab.eval.report import (
    compare_runs,
    metric_order,
    plot_histogram,
    plot_trace_by_step,
    plot_training_curves,
    print_summary,
    write_report,
)
from r1lab.eval.results import EvalResult, load_result
from r1lab.utils.jsonl import JsonlWriter

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _result(pass1: float) -> EvalResult:
    samples = [
        {
            "problem_id": "p0",
            "sample_index": 0,
            "prompt": "Q:",
            "completion": " <answer> 3",
            "extracted": "3",
            "gold": "3",
            "correct": True,
        },
        {
            "problem_id": "p0",
            "sample_index": 1,
            "prompt": "Q:",
            "completion": " 4",
            "extracted": "4",
            "gold": "3",
            "correct": False,
        },
    ]
    metrics = {
        "pass@1": pass1,
        "pass@1_ci": [0.1, 0.9],
        "cons@8": 0.5,
        "pass@8": 0.9,
        "k": 8,
        "pass@2": 0.6,
        "format_rate": 0.25,
        "num_problems": 2,
    }
    return EvalResult(metrics, samples)


def test_write_report_json_and_markdown(tmp_path):
    paths = write_report(
        tmp_path,
        {"base": _result(0.125), "final": {"pass@1": 0.5, "k": 8}},
        extra={"wall_seconds": 12.5},
    )
    doc = json.loads((tmp_path / "report.json").read_text())
    assert paths["report_json"] == str(tmp_path / "report.json")
    assert doc["sections"]["base"]["pass@1"] == 0.125
    assert doc["sections"]["final"] == {"pass@1": 0.5, "k": 8}
    assert doc["extra"] == {"wall_seconds": 12.5}
    md = (tmp_path / "report.md").read_text()
    assert "| metric | base | final |" in md
    assert "| pass@1 | 0.1250 | 0.5000 |" in md
    assert "| pass@1_ci | [0.100, 0.900] | - |" in md
    assert "| k | 8 | 8 |" in md
    assert "**wall_seconds**: 12.5000" in md
    assert "p0 #0: correct" in md and "p0 #1: wrong" in md
    with pytest.raises(DataError):
        write_report(tmp_path, {})


def test_metric_order_puts_protocol_metrics_first():
    names = ["k", "zeta", "format_rate", "pass@8", "cons@8", "pass@2", "pass@1", "pass@1_se"]
    assert metric_order(names) == [
        "pass@1",
        "pass@1_se",
        "cons@8",
        "pass@2",
        "pass@8",
        "format_rate",
        "k",
        "zeta",
    ]


def test_compare_runs(tmp_path):
    write_report(tmp_path / "runA", {"eval": {"pass@1": 0.25}})
    write_report(tmp_path / "runB", {"base": {"pass@1": 0.5}, "final": {"pass@1": 0.75}})
    table = compare_runs([tmp_path / "runA", tmp_path / "runB"])
    assert table.splitlines()[0] == "| metric | runA | runB/base | runB/final |"
    assert "| pass@1 | 0.2500 | 0.5000 | 0.7500 |" in table
    with pytest.raises(DataError, match="no report.json"):
        compare_runs([tmp_path / "missing"])


def test_plot_training_curves(tmp_path):
    with JsonlWriter(tmp_path / "metrics.jsonl", "w") as w:
        for step in range(5):
            w.write(
                {
                    "step": step,
                    "reward": step / 5,
                    "accuracy": step / 10,
                    "response_len_mean": 20 + step,
                }
            )
    png = plot_training_curves(tmp_path / "metrics.jsonl", tmp_path / "curves.png")
    assert png.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(DataError, match="none of the keys"):
        plot_training_curves(tmp_path / "metrics.jsonl", tmp_path / "x.png", keys=("nope",))
    with pytest.raises(DataError, match="no such metrics file"):
        plot_training_curves(tmp_path / "nothing.jsonl", tmp_path / "x.png")
    assert plot_histogram([1, 2, 2, 3], tmp_path / "h.png", label="tokens").exists()


def test_load_result_rebuilds_metrics(tmp_path):
    rows = []
    for pi, flags in enumerate([[1, 0], [1, 1]]):
        for si, ok in enumerate(flags):
            rows.append(
                {
                    "problem_index": pi,
                    "problem_id": f"p{pi}",
                    "sample_index": si,
                    "extracted": "1" if ok else "2",
                    "correct": bool(ok),
                    "format": 1.0,
                    "finish_reason": "stop",
                    "num_tokens": 3,
                    "gold": "1",
                }
            )
    with JsonlWriter(tmp_path / "s.jsonl", "w") as w:
        for r in rows:
            w.write(r)
    res = load_result(tmp_path / "s.jsonl")
    assert res.metrics["k"] == 2
    assert res.metrics["pass@1"] == pytest.approx(0.75)
    assert res.metrics["cons@2"] == pytest.approx(1.0)  # tie in p0: correct occurs first
    with JsonlWriter(tmp_path / "short.jsonl", "w") as w:
        w.write(rows[0])
        w.write(rows[2])
        w.write(rows[3])
    with pytest.raises(DataError, match="do not have k=2 samples"):
        load_result(tmp_path / "short.jsonl", k=2)


def test_plot_trace_by_step(tmp_path):
    with JsonlWriter(tmp_path / "samples.jsonl", "w") as w:
        for step in range(3):
            for text in ["x = 1", "wait, x = 2" if step else "y"]:
                w.write({"step": step, "completion": text})
    png = plot_trace_by_step(tmp_path / "samples.jsonl", tmp_path / "trace.png")
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_print_summary_shows_headline_metrics(capsys):
    print_summary({"base": _result(0.125), "final": {"pass@1": 0.5, "trace/len_mean": 3.0}})
    out = capsys.readouterr().out
    assert "pass@1" in out and "0.1250" in out and "0.5000" in out
    assert "trace/" not in out  # analytics stay in the report, not the short table
