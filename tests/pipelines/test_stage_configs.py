"""The bundled multi-stage recipes give every stage the config it had before stage sections were
embedded whole (so the README's figures stay valid), and what a stage section may set.

The expected configs in ``stage_configs/*.yaml`` were captured from the pipelines as they were
before the change: each pipeline runs with every stage's ``run`` replaced by a recorder (no model
is built), and the config each stage received is compared, with temporary paths normalized.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from r1lab.config import load_config, to_dict

EXPECTED = Path(__file__).parent / "stage_configs"
RECIPES = ("r1_tiny", "distill_tiny", "distill_vs_rl_tiny")


def _stub_runs(monkeypatch, tmp: Path, seen: list):
    """Replace every stage runner by one that records its config and fakes its outputs."""
    from r1lab.pipelines import grpo, pretrain, r1_all_rl, r1_common, rejection_sampling, sft

    def record(kind, cfg, run_dir):
        seen.append((kind, to_dict(cfg)))
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        return Path(run_dir) / "checkpoint"

    def fake_sft(cfg, *, run_dir=None, log=print, **_):
        ckpt = record("sft", cfg, run_dir)
        row = {"loss": 1.0, "samples": 8, "target_tokens": 100}
        (Path(run_dir) / "metrics.jsonl").write_text(json.dumps(row) + "\n")
        return SimpleNamespace(checkpoint=ckpt, eval_loss=1.0, steps=1)

    def fake_rl(cfg, *, run_dir=None, log=print, **_):
        ckpt = record("rl", cfg, run_dir)
        m = [{"reward": 0.5, "response_len_mean": 10.0}]
        return SimpleNamespace(checkpoint=ckpt, metrics=m, wall_seconds=1.0)

    def fake_rs(cfg, *, run_dir=None, log=print, **_):
        record("rs", cfg, run_dir)
        row = {
            "question": "1+1?",
            "completion": "<think>\n2\n</think>\n\n2",
            "messages": [
                {"role": "user", "content": "1+1?"},
                {"role": "assistant", "content": "<think>\n2\n</think>\n\n2"},
            ],
        }
        data = Path(run_dir) / "dataset.jsonl"
        data.write_text(json.dumps(row) + "\n")
        stats = {"samples": 1}
        return SimpleNamespace(dataset=data, rows=1, stats=stats, sft_prompt_format="chat")

    monkeypatch.setattr(sft, "run", fake_sft)
    monkeypatch.setattr(grpo, "run", fake_rl)
    monkeypatch.setattr(rejection_sampling, "run", fake_rs)
    monkeypatch.setattr(pretrain, "ensure_base", lambda cfg, **_: tmp / f"base-{cfg.size}")
    monkeypatch.setattr(r1_all_rl, "resolve_reward_model", lambda *a, **k: str(tmp / "rm"))
    monkeypatch.setattr(r1_all_rl, "score_general_eval", lambda *a, **k: {})
    monkeypatch.setattr(r1_common, "evaluate_checkpoint", lambda *a, **k: {"pass@1": 0.0})
    from r1lab.pipelines import r1

    if hasattr(r1, "evaluate_checkpoint"):
        monkeypatch.setattr(r1, "evaluate_checkpoint", lambda *a, **k: {"pass@1": 0.0})


def effective_stage_configs(recipe: str, tmp: Path, monkeypatch) -> list:
    """[(kind, config dict)] of every stage the bundled ``recipe`` runs, in order."""
    from r1lab.pipelines import distill, distill_vs_rl, r1
    from r1lab.pipelines.distill_config import DistillConfig
    from r1lab.pipelines.distill_vs_rl_config import DistillVsRLConfig
    from r1lab.pipelines.r1_config import R1Config

    seen: list = []
    _stub_runs(monkeypatch, tmp, seen)
    over = [f"output_dir={tmp}", "progress=false"]
    quiet = lambda *_: None  # noqa: E731
    if recipe == "r1_tiny":
        r1.run(load_config(R1Config, recipe, over), log=quiet)
    elif recipe == "distill_tiny":
        (tmp / "teacher").mkdir()
        cfg = load_config(DistillConfig, recipe, [*over, f"teacher.path={tmp / 'teacher'}"])
        distill.run(cfg, log=quiet)
    else:
        distill_vs_rl.run(load_config(DistillVsRLConfig, recipe, over), log=quiet)
    text = yaml.safe_dump(seen, sort_keys=True).replace(str(tmp), "TMP")
    return yaml.safe_load(text)


@pytest.mark.parametrize("recipe", RECIPES)
def test_bundled_recipes_give_each_stage_the_config_it_had(recipe, tmp_path, monkeypatch, capsys):
    got = effective_stage_configs(recipe, tmp_path, monkeypatch)
    want = yaml.safe_load((EXPECTED / f"{recipe}.yaml").read_text())
    assert [kind for kind, _ in got] == [kind for kind, _ in want]
    for (kind, g), (_, w) in zip(got, want, strict=True):
        assert g == w, kind
