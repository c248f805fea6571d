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


def effective_stage_configs(recipe: str, tmp: Path, monkeypatch, overrides=()) -> list:
    """[(kind, config dict)] of every stage the bundled ``recipe`` runs, in order."""
    from r1lab.pipelines import distill, distill_vs_rl, r1
    from r1lab.pipelines.distill_config import DistillConfig
    from r1lab.pipelines.distill_vs_rl_config import DistillVsRLConfig
    from r1lab.pipelines.r1_config import R1Config

    seen: list = []
    _stub_runs(monkeypatch, tmp, seen)
    over = [f"output_dir={tmp}", "progress=false", *overrides]
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


def test_a_stage_section_sets_anything_its_stage_can_set_alone(tmp_path, monkeypatch):
    over = [
        "reasoning_rl.rollout.engine=vllm",
        "reasoning_rl.lora.enabled=true",
        "all_rl.dist.fsdp=true",
        "all_rl.sampling.temperature=0.9",
        "cold_start.sft.train.lr=0.01",
        "cold_start.r1_zero.k=3",
        "rejection.sampling.top_p=0.5",
        "sft.data.max_len=99",
    ]
    got = effective_stage_configs("r1_tiny", tmp_path, monkeypatch, over)
    (_, zero), (_, sft1), (_, rl2), (_, rs3), (_, sft3), (_, rl4) = got
    assert rl2["rollout"]["engine"] == "vllm" and rl2["lora"]["enabled"] is True
    assert not rl4["lora"]["enabled"] and rl4["dist"]["fsdp"] and not rl2["dist"]["fsdp"]
    assert rl4["sampling"]["temperature"] == 0.9 and rl2["sampling"]["temperature"] == 0.7
    assert sft1["train"]["lr"] == 0.01 and sft3["train"]["lr"] == 0.002
    assert zero["k"] == 3 and rs3["sampling"]["top_p"] == 0.5
    assert sft3["data"]["max_len"] == 99 and sft1["data"]["max_len"] == 192
    # what the pipeline owns: the stage's model, data and evaluation, the run's seed
    assert rl2["model"]["path"] == "TMP/r1_tiny/1_cold_start/sft/checkpoint"
    assert rl4["data"]["train_file"] == "TMP/r1_tiny/4_all_rl/prompts.jsonl"
    assert zero["data"]["template"] == "r1_zero" and rl2["data"]["template"] == "chat"


@pytest.mark.parametrize(
    "cls, recipe, override, message",
    [
        (
            "R1Config",
            "r1_tiny",
            "reasoning_rl.model.path=x",
            "reasoning_rl.model.path: expected no",
        ),
        ("R1Config", "r1_tiny", "all_rl.seed=3", "all_rl.seed: expected no value here"),
        ("R1Config", "r1_tiny", "all_rl.data.n_train=5", "all_rl.data.n_train: expected no"),
        ("R1Config", "r1_tiny", "reasoning_rl.eval.k=2", "reasoning_rl.eval.k: expected no"),
        (
            "R1Config",
            "r1_tiny",
            "sft.data.train_file=pyproject.toml",
            "sft.data.train_file: expected",
        ),
        ("R1Config", "r1_tiny", "rejection.reasoning.open_tag=x", "rejection.reasoning.open_tag"),
        ("R1Config", "r1_tiny", "cold_start.r1_zero.threads=1", "cold_start.r1_zero.threads"),
        ("DistillConfig", "distill_tiny", "sample.model.dtype=bfloat16", "sample.model.dtype"),
        ("DistillConfig", "distill_tiny", "sft.model.path=x", "sft.model.path: expected no"),
        ("DistillVsRLConfig", "distill_vs_rl_tiny", "rl.rewards=[]", "rl.rewards: expected no"),
        (
            "DistillVsRLConfig",
            "distill_vs_rl_tiny",
            "teacher.rl.data.seed=4",
            "teacher.rl.data.seed",
        ),
        ("DistillVsRLConfig", "distill_vs_rl_tiny", "distill.sample.rewards=[]", "distill.sample"),
    ],
)
def test_a_key_the_pipeline_sets_is_refused_in_a_stage_section(cls, recipe, override, message):
    """No silent override: the pipeline's value would replace the section's."""
    from r1lab.errors import ConfigError
    from r1lab.pipelines import distill_config, distill_vs_rl_config, r1_config

    modules = (r1_config, distill_config, distill_vs_rl_config)
    config_cls = next(getattr(m, cls) for m in modules if hasattr(m, cls))
    with pytest.raises(ConfigError, match="the pipeline sets it") as err:
        load_config(config_cls, recipe, [override])
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "reasoning_rl.grpo.adv_estimator=nope",
            "expected a registered advantage estimator (|dr_grpo, grpo",
        ),
        ("all_rl.grpo.kl_estimator=k9", "expected a registered KL estimator (|k1"),
        ("all_rl.rewards=[{name: acuracy}]", "expected a registered reward (|cosine, "),
        (
            "reasoning_rl.rewards=[{name: accuracy, params: {extractor: boxd}}]",
            "reasoning_rl.rewards[0].params.extractor: expected a registered answer extractor",
        ),
        (
            "reasoning_rl.rewards=[{name: accuracy, params: {maths: {timeout_s: 1}}}]",
            "params.maths: expected a param some verifier takes, or one's section (|countdown, ",
        ),
        (
            "reasoning_rl.rewards=[{name: format_r1, params: {open: x}}]",
            "params: expected params the reward 'format_r1' takes (close_tag, open_tag",
        ),
        ("rejection.filters=[{name: redable}]", "expected a registered sample filter (|readable, "),
        ("all_rl.rewards=[{name: cosine}]", "'cosine' reads the verdicts of 'accuracy'"),
        (
            "cold_start.r1_zero.rewards=[{name: accuracy, params: {math: 1}}]",
            "params.math: expected",
        ),
    ],
)
def test_an_unknown_name_in_a_stage_fails_before_any_model_loads(
    override, message, monkeypatch, tmp_path, capsys
):
    """Through the CLI: exit status 2, one line naming the known values ("|" separates the
    message from one of them), and neither the tiny base (pretraining) nor any checkpoint was
    loaded."""
    import r1lab.models.hf_load as hf_load
    from r1lab.cli import main
    from r1lab.pipelines import pretrain

    loads: list = []
    monkeypatch.setattr(hf_load, "load_causal_lm", lambda *a, **k: loads.append(a))
    monkeypatch.setattr(pretrain, "ensure_base", lambda *a, **k: loads.append(a))
    code = main(["r1", "r1_tiny", f"output_dir={tmp_path}", override, "--no-progress"])
    assert code == 2 and loads == []
    err = capsys.readouterr().err
    assert all(part in err for part in message.split("|"))  # (the known names: listed)


def test_distill_vs_rl_gives_every_run_the_experiments_rewards_and_data(tmp_path, monkeypatch):
    over = ["rewards=[{name: accuracy, weight: 2.0}]", "data.n_train=50", "rl.lora.enabled=true"]
    got = effective_stage_configs("distill_vs_rl_tiny", tmp_path, monkeypatch, over)
    (_, teacher), (_, traces), (_, sft), (_, student) = got
    want = [{"name": "accuracy", "weight": 2.0, "params": {}}]
    assert teacher["rewards"] == traces["rewards"] == student["rewards"] == want
    assert (
        teacher["data"]["n_train"] == traces["data"]["n_train"] == student["data"]["n_train"] == 50
    )
    assert student["lora"]["enabled"] and not teacher["lora"]["enabled"]
    assert sft["data"]["max_len"] == 160 and student["model"]["path"] == "TMP/base-300k"
