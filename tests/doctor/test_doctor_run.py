"""RunDoctor over step rows: stops, counting, logging, the report and its files, the config."""

from __future__ import annotations

import math

import pytest

from r1lab.config import from_dict
from r1lab.doctor import DoctorConfig, DoctorReport, RunDoctor, TrainingStopped
from r1lab.errors import ConfigError, R1LabError


def healthy(step: int, **over) -> dict:
    row = {
        "step": step,
        "reward": 0.5,
        "zero_variance_frac": 0.25,
        "truncation_rate": 0.0,
        "empty_response_frac": 0.0,
        "reward_error_rate": 0.0,
        "loss": -0.1,
        "grad_norm": 0.7,
        "skipped_nonfinite": 0.0,
        "ratio_max": 1.01,
        "ratio_min": 0.99,
        "ratio_mean/first": 1.0,
        "kl": 0.01,
        "entropy": 2.5,
    }
    row.update(over)
    return row


def quiet_doctor(cfg: DoctorConfig | None = None) -> tuple[RunDoctor, list[str]]:
    lines: list[str] = []
    return RunDoctor(cfg, log=lines.append), lines


def test_healthy_run_has_no_findings_and_an_empty_report(tmp_path):
    doc, lines = quiet_doctor()
    for s in range(5):
        assert doc.observe(healthy(s)) == []
    rep = doc.report()
    assert rep.steps == 5 and rep.entries == () and rep.stopped is None and rep.unchecked == ()
    assert lines == []
    assert "No warnings." in rep.to_markdown()


def test_reward_always_zero_stops_with_zero_variance_message_after_patience():
    doc, _ = quiet_doctor(DoctorConfig(zero_variance_patience=3))
    zero = {"reward": 0.0, "zero_variance_frac": 1.0}
    doc.observe(healthy(0, **zero))
    doc.observe(healthy(1, **zero))
    with pytest.raises(TrainingStopped, match="zero-variance group") as info:
        doc.observe(healthy(2, **zero))
    exc = info.value
    assert isinstance(exc, R1LabError)
    assert exc.finding.check == "zero_variance" and exc.finding.step == 2
    assert "at step 2 [zero_variance]" in str(exc)
    assert exc.report.stopped == exc.finding.message
    assert exc.report.count("zero_variance", "warning") == 2
    assert exc.report.count("zero_variance", "fatal") == 1
    with pytest.raises(R1LabError, match="already stopped"):
        doc.observe(healthy(3))


def test_nan_steps_are_counted_and_training_continues_below_patience():
    doc, lines = quiet_doctor(DoctorConfig(nonfinite_patience=2))
    nan = {"loss": math.nan, "grad_norm": math.nan, "skipped_nonfinite": 1.0}
    doc.observe(healthy(0))
    assert [f.check for f in doc.observe(healthy(1, **nan))] == ["nonfinite"]
    doc.observe(healthy(2))
    doc.observe(healthy(3, **nan))
    doc.observe(healthy(4))
    rep = doc.report()
    e = rep.entry("nonfinite", "warning")
    assert (e.count, e.first_step, e.last_step) == (2, 1, 3)
    assert rep.stopped is None
    assert len([ln for ln in lines if "[nonfinite]" in ln]) == 1  # logged once, counted twice
    doc.observe(healthy(5, **nan))
    with pytest.raises(TrainingStopped, match="2 consecutive steps"):
        doc.observe(healthy(6, **nan))


def test_report_lists_every_warning_with_counts_and_step_range(tmp_path):
    doc, lines = quiet_doctor()
    doc.observe(healthy(0, truncation_rate=0.9))
    doc.observe(healthy(1, truncation_rate=0.1, kl=3.0))
    doc.observe(healthy(2, truncation_rate=0.8, entropy=0.01))
    rep = doc.report()
    assert [(e.check, e.level, e.count, e.first_step, e.last_step) for e in rep.entries] == [
        ("entropy", "warning", 1, 2, 2),
        ("kl", "warning", 1, 1, 1),
        ("truncation", "warning", 2, 0, 2),
    ]
    trunc = rep.entry("truncation", "warning")
    assert "90%" in trunc.first_message and "80%" in trunc.last_message
    assert rep.num_warnings == 4
    assert rep.summary() == "doctor: 3 steps, 4 warnings (entropy x1, kl x1, truncation x2)"
    assert len(lines) == 3
    path = rep.save(tmp_path)
    assert DoctorReport.load(tmp_path) == rep == DoctorReport.load(path)
    md = (tmp_path / "doctor.md").read_text()
    assert "| truncation | warning | 2 | 0 | 2 |" in md


def test_missing_metrics_are_reported_as_unchecked_and_logged_once():
    doc, lines = quiet_doctor()
    row = healthy(0)
    del row["zero_variance_frac"], row["empty_response_frac"]
    doc.observe(row)
    doc.observe({**row, "step": 1})
    assert doc.report().unchecked == ("empty_response", "zero_variance")
    assert len(lines) == 2 and "zero_variance_frac" in lines[1]
    assert "not checked (metric missing): empty_response, zero_variance" in doc.report().summary()


def test_disable_and_enabled_switch_checks_off():
    doc, _ = quiet_doctor(DoctorConfig(disable=("truncation",)))
    assert doc.observe(healthy(0, truncation_rate=1.0)) == []
    off, _ = quiet_doctor(DoctorConfig(enabled=False))
    assert off.observe(healthy(0, truncation_rate=1.0, zero_variance_frac=1.0)) == []
    assert off.checks == []
    with pytest.raises(ConfigError, match="known: empty_response"):
        RunDoctor(DoctorConfig(disable=("truncaton",)))


def test_config_loads_from_recipe_dicts_and_rejects_bad_values():
    cfg = from_dict(DoctorConfig, {"zero_variance_patience": 3, "disable": ["entropy"]})
    assert cfg.zero_variance_patience == 3 and cfg.disable == ("entropy",)
    with pytest.raises(ConfigError, match="unknown config key 'doctor.patience'"):
        from_dict(DoctorConfig, {"patience": 3}, "doctor")
    for bad in (
        {"truncation_warn": 1.5},
        {"nonfinite_patience": -1},
        {"ratio_warn": 0.5},
        {"ratio_warn": 50.0, "ratio_stop": 20.0},
        {"kl_warn": 0.0},
        {"entropy_floor": -1.0},
    ):
        with pytest.raises(ConfigError, match="doctor"):
            DoctorConfig(**bad)


def test_report_load_errors_are_clear(tmp_path):
    from r1lab.errors import DataError

    with pytest.raises(DataError, match="no doctor report"):
        DoctorReport.load(tmp_path)
    (tmp_path / "doctor.json").write_text("{}")
    with pytest.raises(DataError, match="not a doctor report"):
        DoctorReport.load(tmp_path)
