"""Distillation: teacher traces -> student SFT, evaluated side by side; resumable; clear errors."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from r1lab.config import from_dict, load_config
from r1lab.errors import ConfigError
from r1lab.models.tiny import build_model
from r1lab.pipelines import distill
from r1lab.pipelines.distill_config import DistillConfig
from r1lab.utils.jsonl import read_jsonl


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_tokenizer):
    out = {}
    for name, seed in (("teacher", 1), ("student", 2)):
        path = tmp_path_factory.mktemp(name)
        build_model("test", tiny_tokenizer, seed=seed).save_pretrained(path)
        tiny_tokenizer.save_pretrained(path)
        out[name] = path
    return out


def recipe(models, out) -> dict:
    return {
        "output_dir": str(out),
        "run_name": "d",
        "progress": False,
        "threads": 1,
        "teacher": {"path": str(models["teacher"])},
        "student": {"path": str(models["student"])},
        "data": {"n_train": 8, "n_test": 3},
        "sample": {
            "n_prompts": 6,
            "k": 2,
            "min_score": 0.0,
            "filters": [],
            "prompts_per_chunk": 3,
            "sampling": {"max_new_tokens": 8},
        },
        "sft": {"train": {"epochs": 1, "max_steps": 2, "batch_tokens": 256}},
        "eval": {"k": 2, "max_new_tokens": 8},
    }


def test_distill_end_to_end(models, tmp_path):
    torch.set_num_threads(1)
    cfg = from_dict(DistillConfig, recipe(models, tmp_path))
    res = distill.run(cfg, log=lambda *_: None)
    report = json.loads((tmp_path / "d" / "report.json").read_text())
    assert list(report["sections"]) == ["student base", "teacher", "distilled student"]
    assert all("pass@1" in m and "cons@2" in m for m in report["sections"].values())
    traces = read_jsonl(tmp_path / "d" / "1_sample" / "dataset.jsonl")
    assert len(traces) == 12 and all(
        t["provenance"]["model"] == str(models["teacher"]) for t in traces
    )
    sft_cfg = yaml.safe_load((tmp_path / "d" / "2_sft" / "config.yaml").read_text())
    assert sft_cfg["model"]["path"] == str(models["student"])
    assert sft_cfg["data"]["train_file"] == res.stages["traces"]["dataset"]
    logs: list[str] = []
    distill.run(cfg, log=logs.append)
    assert sum("already finished" in line for line in logs) == 4


def test_missing_teacher_is_a_clear_error(models, tmp_path):
    bad = {**recipe(models, tmp_path), "teacher": {"path": str(tmp_path / "nope")}}
    with pytest.raises(ConfigError, match="does not exist"):
        distill.run(from_dict(DistillConfig, bad))
    with pytest.raises(ConfigError, match="teacher.path"):
        distill.run(from_dict(DistillConfig, {**bad, "teacher": {"path": ""}}))


def test_bundled_recipe_loads():
    cfg = load_config(DistillConfig, "distill_tiny")
    assert cfg.teacher.path.endswith("4_all_rl/checkpoint") and cfg.student.path == "tiny"
    assert cfg.eval.format_reward == "format_r1" and cfg.data.template == "chat"
    assert load_config(DistillConfig, None, ["teacher.dtype=float32"]).teacher.path == ""
