"""R1 Table 6 in miniature on random "test"-size models: teacher RL -> both arms -> one report
with both students side by side and their budgets; a rerun skips finished stages."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from r1lab.cli import main
from r1lab.config import from_dict, load_config
from r1lab.errors import ConfigError
from r1lab.models.tiny import build_model
from r1lab.pipelines import distill_vs_rl
from r1lab.pipelines.distill_vs_rl_config import DistillVsRLConfig

GRPO = {"steps": 2, "prompts_per_step": 2, "group_size": 2, "mini_batches": 2, "beta": 0.0}
ARMS = ("(a) distilled student", "(b) RL student")
SAMPLING = {"max_new_tokens": 8, "batch_size": 32}


@pytest.fixture(scope="module")
def bases(tmp_path_factory, tiny_tokenizer):
    out = {}
    for name, seed in (("teacher", 1), ("student", 2)):
        path = tmp_path_factory.mktemp(name)
        build_model("test", tiny_tokenizer, seed=seed).save_pretrained(path)
        tiny_tokenizer.save_pretrained(path)
        out[name] = str(path)
    return out


def recipe(bases, out) -> dict:
    return {
        "output_dir": str(out),
        "run_name": "t6",
        "progress": False,
        "threads": 1,
        "teacher": {"base": bases["teacher"], "rl": {"grpo": GRPO, "sampling": SAMPLING}},
        "student": {"base": bases["student"]},
        "data": {"n_train": 8, "n_test": 3},
        # a random teacher is never right: keep every sample so arm (a) has traces to train on
        "distill": {
            "sample": {
                "n_prompts": 4,
                "k": 2,
                "min_score": 0.0,
                "filters": [],
                "prompts_per_chunk": 2,
                "sampling": {"max_new_tokens": 8},
            },
            "sft": {"train": {"epochs": 1, "batch_tokens": 64}},
        },
        "rl": {"grpo": GRPO, "sampling": SAMPLING},
        "eval": {"k": 2, "max_new_tokens": 8},
    }


def test_both_arms_side_by_side_with_budgets_and_resume(bases, tmp_path):
    torch.set_num_threads(1)
    cfg = from_dict(DistillVsRLConfig, recipe(bases, tmp_path))
    res = distill_vs_rl.run(cfg, log=lambda *_: None)
    run = tmp_path / "t6"
    report = json.loads((run / "report.json").read_text())
    assert list(report["sections"]) == ["teacher", "student base", *ARMS]
    for m in report["sections"].values():
        assert all(math.isfinite(m[k]) for k in ("pass@1", "cons@2", "format_rate"))
        assert m["num_problems"] == 3 and m["k"] == 2
    # the teacher is RL-trained here; both arms start from the student's base
    rl0 = yaml.safe_load((run / "0_teacher_rl" / "config.yaml").read_text())
    assert rl0["model"]["path"] == bases["teacher"]
    assert res.stages["teacher"]["checkpoint"] == str(run / "0_teacher_rl" / "checkpoint")
    sft = yaml.safe_load((run / "4_distill_sft" / "config.yaml").read_text())
    rl5 = yaml.safe_load((run / "5_student_rl" / "config.yaml").read_text())
    assert sft["model"]["path"] == rl5["model"]["path"] == bases["student"]
    assert rl5["rewards"] == rl0["rewards"] and rl5["data"] == rl0["data"]
    # comparable budgets: the RL arm trains on (at least) as many sequences as the distilled one
    a, b = (report["extra"][f"budget {n}"] for n in ARMS)
    assert report["extra"]["traces kept"] == 8
    assert a["sequences"] == 7  # 1 of the 8 traces is held out for the SFT eval loss
    assert a["optimizer_steps"] >= 1 and a["trained_tokens"] > 0
    steps = rl5["grpo"]["steps"]
    assert steps == math.ceil(a["sequences"] / 4) and b["optimizer_steps"] == 2 * steps  # 2 mini
    assert b["sequences"] == 4 * steps and b["wall_seconds"] >= 0  # rounded to 0.1 s
    assert "budget" in (run / "report.md").read_text()

    logs: list[str] = []
    distill_vs_rl.run(cfg, log=logs.append)
    assert sum("already finished" in line for line in logs) == 6
    (run / "5_student_rl" / "done.json").unlink()
    logs.clear()
    distill_vs_rl.run(cfg, log=logs.append)
    assert [line for line in logs if "starting in" in line] == [
        f"[(b) RL] starting in {run / '5_student_rl'}"
    ]


def test_given_teacher_skips_teacher_rl_and_cli_runs(bases, tmp_path):
    torch.set_num_threads(1)
    rec = recipe(bases, tmp_path)
    rec["teacher"] = {"path": bases["teacher"]}
    rec["rl"]["grpo"] = {**GRPO, "steps": 1}
    rec["rl_budget"] = "none"
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(rec))
    assert main(["distill-vs-rl", str(path), "--no-progress"]) == 0
    report = json.loads((tmp_path / "t6" / "report.json").read_text())
    assert not (tmp_path / "t6" / "0_teacher_rl").exists()
    assert report["extra"]["budget (b) RL student"]["optimizer_steps"] == 2  # 1 step x 2 mini
    bad = {**rec, "run_name": "x", "teacher": {"path": str(tmp_path / "nope")}}
    with pytest.raises(ConfigError, match="does not exist"):
        distill_vs_rl.run(from_dict(DistillVsRLConfig, bad))


def test_bundled_recipe_loads():
    cfg = load_config(DistillVsRLConfig, "distill_vs_rl_tiny")
    assert cfg.student.pretrain.size == "300k" and cfg.teacher.pretrain.size == "1m"
    assert cfg.teacher.path == "" and cfg.rl_budget == "sequences" and cfg.threads == 2
    assert cfg.data.template == "r1_zero" and cfg.distill.sample.sampling.stop == ("</answer>",)


def test_over_seeds_each_seed_is_a_full_run_and_a_half_finished_seed_resumes(bases, tmp_path):
    from r1lab.pipelines.distill_vs_rl_seeds import run_seeds_distill_vs_rl
    from r1lab.pipelines.seeds import DONE

    torch.set_num_threads(1)
    rec = recipe(bases, tmp_path)
    rec["teacher"]["rl"]["grpo"] = {**GRPO, "steps": 1}
    cfg = from_dict(DistillVsRLConfig, rec)
    res = run_seeds_distill_vs_rl(cfg, [0, 1], log=lambda *_: None)
    root = tmp_path / "t6-seeds"
    assert res.run_dir == root
    report = json.loads((root / "report.json").read_text())
    for seed in (0, 1):  # each seed is a full run with its own seed and its own report
        own = json.loads((root / f"seed{seed}" / "report.json").read_text())["sections"]
        assert yaml.safe_load((root / f"seed{seed}" / "config.yaml").read_text())["seed"] == seed
        assert (root / f"seed{seed}" / "0_teacher_rl" / "checkpoint").exists()
        for arm in ("teacher", *ARMS):
            assert report["metrics"][arm]["pass@1"]["per_seed"][seed] == own[arm]["pass@1"]
    (diff,) = [d for d in report["differences"] if d["a"] == ARMS[1] and d["b"] == ARMS[0]]
    assert diff["metric"] == "pass@1" and len(diff["per_seed"]) == 2
    md = (root / "report.md").read_text()
    assert "95% interval over seeds" in md and "(a) distilled student - (b) RL student" in md
    assert (root / "seeds.png").exists()

    # seed 1 stopped before its RL arm finished: the rerun resumes that stage only
    (root / "seed1" / DONE).unlink()
    (root / "seed1" / "5_student_rl" / "done.json").unlink()
    logs: list[str] = []
    run_seeds_distill_vs_rl(cfg, [0, 1], log=logs.append)
    assert [ln for ln in logs if "starting in" in ln] == [
        f"[(b) RL] starting in {root / 'seed1' / '5_student_rl'}"
    ]
    assert sum("already complete" in ln for ln in logs) == 1
