"""Run logging: JSONL always, TensorBoard event files with the step scalars, W&B only when
installed (one clear line otherwise), and resume cutting the logs back to the checkpoint."""

from __future__ import annotations

import importlib.util
import sys
from types import SimpleNamespace

import pytest

from r1lab.errors import R1LabError
from r1lab.pipelines.rl_config import LoggingConfig
from r1lab.utils.jsonl import read_jsonl
from r1lab.utils.tracking import Tracker


def rows(n: int, start: int = 0):
    return [{"step": s, "reward": 0.5 + s, "loss": -s / 10, "note": "x"} for s in range(start, n)]


def tb_scalars(log_dir, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_jsonl_and_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    with Tracker(tmp_path, LoggingConfig(tensorboard=True)) as t:
        for r in rows(3):
            t.metric(r)
        t.samples([{"step": 0, "completion": "a"}])
    assert read_jsonl(tmp_path / "metrics.jsonl") == rows(3)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert tb_scalars(tmp_path / "tensorboard", "reward") == [(0, 0.5), (1, 1.5), (2, 2.5)]


def test_resume_cuts_logs_back_to_the_checkpoint(tmp_path):
    with Tracker(tmp_path, LoggingConfig()) as t:
        for r in rows(5):  # steps 3 and 4 were logged after the checkpoint, before a kill
            t.metric(r)
            t.samples([{"step": r["step"], "completion": "c"}])
    resumed = SimpleNamespace(steps_done=3, state={})
    with Tracker(tmp_path, LoggingConfig(), resumed=resumed) as t:
        assert t.rows == rows(3)
        for r in rows(5, start=3):
            t.metric(r)
    assert [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [0, 1, 2, 3, 4]
    assert [r["step"] for r in read_jsonl(tmp_path / "samples.jsonl")] == [0, 1, 2]


def test_wandb_missing_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(R1LabError, match=r"pip install 'r1lab\[wandb\]'"):
        Tracker(tmp_path, LoggingConfig(wandb=True))


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed")
def test_wandb_offline_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    with Tracker(tmp_path, LoggingConfig(wandb=True), config={"seed": 0}) as t:
        for r in rows(2):
            t.metric(r)
        run_id = t.state()["wandb_id"]
    assert run_id and list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))
