"""The four-stage R1 pipeline on a random "test"-size model: wiring, data flow between stages,
per-stage evaluation in one report, resumption per stage, and config checks."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from r1lab.cli import main
from r1lab.config import from_dict, load_config
from r1lab.errors import ConfigError
from r1lab.models.tiny import build_model
from r1lab.pipelines import r1
from r1lab.pipelines.r1_config import R1Config
from r1lab.rewards.combine import RewardComponent
from r1lab.utils.jsonl import read_jsonl

SFT = {"train": {"epochs": 1, "max_steps": 2, "batch_tokens": 512}, "data": {"max_len": 160}}
SAMPLING = {"max_new_tokens": 8, "batch_size": 32}
GRPO = {"steps": 1, "prompts_per_step": 2, "group_size": 2, "mini_batches": 2, "beta": 0.0}


def recipe(model_dir, out_dir) -> dict:
    return {
        "output_dir": str(out_dir),
        "run_name": "r",
        "progress": False,
        "threads": 1,
        "model": {"path": str(model_dir)},
        "data": {"n_train": 16, "n_test": 4},
        "cold_start": {
            "n_seed": 6,
            "r1_zero": {"n_prompts": 4, "k": 2, "sampling": {"max_new_tokens": 8}},
            "sft": SFT,
        },
        "reasoning_rl": {
            "grpo": GRPO,
            "sampling": SAMPLING,
            "rewards": [{"name": "accuracy"}, {"name": "format_r1", "weight": 0.5}],
        },
        # a random model is never right: keep every sample so stage 3 has data to move
        "rejection": {
            "n_prompts": 4,
            "k": 2,
            "min_score": 0.0,
            "filters": [],
            "prompts_per_chunk": 2,
            "sampling": {"max_new_tokens": 8},
        },
        "general": {"n": 8, "eval_n": 3, "ratio": 0.25, "rl_share": 0.2},
        "sft": SFT,
        "all_rl": {
            "grpo": GRPO,
            "sampling": SAMPLING,
        },  # automatic spec: rules on reasoning rows, the RM on general
        "reward_model": {"train": {"steps": 3, "n_pairs": 40, "n_eval": 8, "batch_size": 4}},
        "eval": {"k": 2, "max_new_tokens": 8},
    }


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_tokenizer):
    path = tmp_path_factory.mktemp("r1-base")
    build_model("test", tiny_tokenizer, seed=0).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def test_four_stages_report_and_resume(model_dir, tmp_path):
    torch.set_num_threads(1)
    cfg = from_dict(R1Config, recipe(model_dir, tmp_path))
    res = r1.run(cfg, log=lambda *_: None)
    run = tmp_path / "r"
    report = json.loads((run / "report.json").read_text())
    assert list(report["sections"]) == [
        "base",
        "cold_start",
        "reasoning_rl",
        "rejection_sft",
        "all_rl",
    ]
    for metrics in report["sections"].values():
        assert {"pass@1", "cons@2", "format_rate", "general_accuracy"} <= set(metrics)
        assert {"general_rm_helpful", "general_rm_harmless"} <= set(metrics)
        assert metrics["num_problems"] == 4 and metrics["k"] == 2
    # data flows between stages: RL from the cold-start model, stage-3 SFT from the BASE model
    stage = {
        name: yaml.safe_load((run / d / c).read_text())
        for name, d, c in [
            ("rl2", "2_reasoning_rl", "config.yaml"),
            ("sft3", "3_rejection_sft/sft", "config.yaml"),
            ("rl4", "4_all_rl", "config.yaml"),
        ]
    }
    assert stage["rl2"]["model"]["path"] == res.stages["cold_start"]["checkpoint"]
    assert stage["sft3"]["model"]["path"] == str(model_dir)
    assert stage["rl4"]["model"]["path"] == res.stages["rejection_sft"]["checkpoint"]
    # cold start: synthetic seed rows in the readable pattern
    rows = read_jsonl(run / "1_cold_start" / "cold_start.jsonl")
    assert len(rows) >= 6 and all(r["messages"][1]["content"].startswith("<think>\n") for r in rows)
    # stage 3 mixes general rows at the ratio; stage 4 prompts hold general prompts
    mix = res.stages["rejection_sft"]["mix"]
    assert mix["reasoning_rows"] == 8 and mix["general_rows"] == round(0.25 / 0.75 * 8)
    prompts = read_jsonl(run / "4_all_rl" / "prompts.jsonl")
    assert sum(p["verifier"] == "general" for p in prompts) == round(0.2 / 0.8 * 16)
    assert res.stages["reasoning_rl"]["rewards"] == ["accuracy", "format_r1"]
    # stage 4: the tiny RM trained here scores the general rows, logged per step
    assert res.stages["all_rl"]["rewards"][-2:] == ["rm_helpful", "rm_harmless"]
    rl4 = read_jsonl(run / "4_all_rl" / "metrics.jsonl")
    assert all(m["reward_errors/rm_helpful"] == 0 for m in rl4) and "reward/rm_harmless" in rl4[0]
    rm_dir = stage["rl4"]["rewards"][-1]["params"]["model"]
    assert report["extra"]["reward model"]["path"] == rm_dir
    assert 0.0 <= report["extra"]["reward model"]["heldout_pairwise_accuracy"] <= 1.0

    # rerun: every stage is skipped; after removing the last marker only stage 4 runs again
    logs: list[str] = []
    r1.run(cfg, log=logs.append)
    assert sum("already finished" in line for line in logs) == 5
    (run / "4_all_rl" / "done.json").unlink()
    logs.clear()
    r1.run(cfg, log=logs.append)
    assert [line for line in logs if "starting in" in line] == [
        f"[all_rl] starting in {run / '4_all_rl'}"
    ]

    # the same run directory with another config is refused
    other = from_dict(R1Config, {**recipe(model_dir, tmp_path), "seed": 3})
    with pytest.raises(ConfigError, match="different config"):
        r1.run(other)


def test_cli_runs_a_stage_prefix_from_a_recipe_file(model_dir, tmp_path):
    torch.set_num_threads(1)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**recipe(model_dir, tmp_path), "stages": ["cold_start"]}))
    assert main(["r1", str(path), "--no-progress"]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert list(report["sections"]) == ["base", "cold_start"]
    assert main(["r1", str(path), "stages=[reasoning_rl]", "--no-progress"]) == 2  # not a prefix


def test_stage_rewards(monkeypatch):
    cfg = R1Config()
    names = lambda spec: [(c.name, c.weight) for c in spec]  # noqa: E731
    assert names(r1.stage_rewards(cfg, "reasoning_rl")) == [("accuracy", 1.0), ("language", 1.0)]
    assert r1.stage_rewards(cfg, "reasoning_rl")[1].params == {
        "open_tag": "<think>",
        "close_tag": "</think>",
    }
    rm = ["rm_helpful", "rm_harmless"]
    stage4 = r1.stage_rewards(cfg, "all_rl", "RM")
    assert names(stage4) == [
        ("accuracy", 0.0),
        ("reasoning_accuracy", 1.0),
        ("language", 1.0),
        ("rm_helpful", 1.0),
        ("rm_harmless", 1.0),
    ]
    assert all(
        c.params["model"] == "RM" and c.params["close_tag"] == "</think>" for c in stage4[3:]
    )
    monkeypatch.setattr(r1, "REWARDS", {"accuracy", "format_r1"})  # no language reward registered
    monkeypatch.setattr(r1.stage4, "REWARDS", {"accuracy", "format_r1"})
    assert names(r1.stage_rewards(cfg, "reasoning_rl")) == [("accuracy", 1.0), ("format_r1", 0.5)]
    assert [n for n, _ in names(r1.stage_rewards(cfg, "all_rl"))] == [
        "accuracy",
        "reasoning_accuracy",
        *rm,
    ]
    explicit = load_config(
        R1Config,
        None,
        [
            "all_rl.rewards=[{name: accuracy, weight: 2.0}, {name: rm_helpful, params: {max_len: 9}}]"
        ],
    )
    got = r1.stage_rewards(explicit, "all_rl", "RM")
    assert got[0] == RewardComponent("accuracy", 2.0) and [c.name for c in got] == [
        "accuracy",
        rm[0],
    ]
    assert got[1].params["model"] == "RM" and got[1].params["max_len"] == 9  # recipe's wins


def test_bundled_recipe_loads_and_partial_sections_keep_r1_defaults():
    cfg = load_config(R1Config, "r1_tiny")
    assert cfg.stages == ("cold_start", "reasoning_rl", "rejection_sft", "all_rl")
    assert cfg.data.template == "chat" and cfg.run_name == "r1_tiny"
    # the recipe sets other keys of these sections: the R1 defaults must survive
    assert cfg.eval.format_reward == "format_r1" and cfg.eval.k == 4
    assert cfg.reasoning_rl.sampling.stop == () and cfg.all_rl.sampling.max_new_tokens == 128
    assert cfg.cold_start.r1_zero.sampling.stop == ("</answer>",)
    partial = load_config(
        R1Config, None, ["data.n_test=5", "cold_start.r1_zero.sampling.top_p=0.9"]
    )
    assert partial.data.template == "chat" and partial.cold_start.r1_zero.sampling.stop == (
        "</answer>",
    )


def test_cli_over_seeds_runs_each_seed_and_extends_them_with_more_stages(model_dir, tmp_path):
    torch.set_num_threads(1)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**recipe(model_dir, tmp_path), "stages": ["cold_start"]}))
    assert main(["r1", str(path), "seeds=[0,1]", "--no-progress"]) == 0
    root = tmp_path / "r-seeds"
    report = json.loads((root / "report.json").read_text())
    assert report["seeds"] == [0, 1] and list(report["metrics"]) == ["base", "cold_start"]
    for seed in (0, 1):
        own = json.loads((root / f"seed{seed}" / "report.json").read_text())["sections"]
        assert yaml.safe_load((root / f"seed{seed}" / "config.yaml").read_text())["seed"] == seed
        for stage in ("base", "cold_start"):
            assert report["metrics"][stage]["pass@1"]["per_seed"][seed] == own[stage]["pass@1"]
    # the synthetic cold-start rows are drawn with the seed: the two seeds differ
    rows = [read_jsonl(root / f"seed{s}" / "1_cold_start" / "seed.jsonl") for s in (0, 1)]
    assert rows[0] != rows[1]
    assert "cold_start - base" in (root / "report.md").read_text()
    # more stages later: the complete seeds are not reused as they are; each resumes its run
    assert main(["r1", str(path), "seeds=[0,1]", "stages=[cold_start,reasoning_rl]",
                 "--no-progress"]) == 0  # fmt: skip
    report = json.loads((root / "report.json").read_text())
    assert list(report["metrics"]) == ["base", "cold_start", "reasoning_rl"]
    assert all((root / f"seed{s}" / "2_reasoning_rl" / "done.json").exists() for s in (0, 1))
