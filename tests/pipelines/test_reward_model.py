"""The tiny reward model: synthetic preference pairs, Bradley-Terry training to a held-out pairwise
accuracy well above chance, a plain HF directory the scorer reads, and the config-hash cache."""

from __future__ import annotations

import json

import pytest
import torch

from r1lab.data.preferences import FLAWS, preference_pairs, split_pairs
from r1lab.engines.reward_model import load_scorer
from r1lab.errors import ConfigError
from r1lab.models.tiny import build_model
from r1lab.pipelines.reward_model import (
    RewardModelTrainConfig,
    ensure_reward_model,
    pairwise_accuracy,
)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, tiny_tokenizer):
    path = tmp_path_factory.mktemp("rm-base")
    build_model("test", tiny_tokenizer, seed=0).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def test_pairs_cover_every_flaw_and_harm_is_rejected():
    pairs = preference_pairs(48, seed=1)
    assert pairs == preference_pairs(48, seed=1) and pairs != preference_pairs(48, seed=2)
    assert {p["flaw"] for p in pairs} == set(FLAWS)
    assert all(p["chosen"] != p["rejected"] for p in pairs)
    harmful = [p for p in pairs if p["flaw"] == "harmful_cot"]
    assert all(p["rejected"].startswith("<think>") and "</think>" in p["rejected"] for p in harmful)
    train, held = split_pairs(pairs, 8, seed=1)
    key = lambda p: (p["prompt"], p["chosen"], p["rejected"])  # noqa: E731
    assert len(held) == 8 and not {key(p) for p in held} & {key(p) for p in train}


def test_bradley_terry_training_beats_chance_and_is_cached(base_dir):
    torch.set_num_threads(1)
    cfg = RewardModelTrainConfig(steps=60, n_pairs=400, n_eval=80, lr=3e-3, max_len=96)
    logs: list[str] = []
    out = ensure_reward_model(cfg, base_dir, progress=False, log=logs.append)
    info = json.loads((out / "reward_model.json").read_text())
    assert info["heldout_pairwise_accuracy"] >= 0.75  # chance is 0.5
    assert info["heldout_pairwise_accuracy"] > info["heldout_pairwise_accuracy_before"]
    # a plain HF directory: the scorer reproduces the recorded held-out accuracy
    _, held = split_pairs(preference_pairs(cfg.n_pairs, cfg.seed), cfg.n_eval, cfg.seed)
    scorer = load_scorer(out, max_len=cfg.max_len)
    assert pairwise_accuracy(scorer, held) == pytest.approx(info["heldout_pairwise_accuracy"])
    logs.clear()
    assert ensure_reward_model(cfg, base_dir, progress=False, log=logs.append) == out
    assert any("reusing cached reward model" in line for line in logs)


def test_bad_reward_model_configs_fail_clearly(base_dir, tmp_path):
    with pytest.raises(ConfigError, match="init must be"):
        ensure_reward_model(RewardModelTrainConfig(init="x", steps=1), base_dir, progress=False)
    with pytest.raises(ConfigError, match="n_eval < n_pairs"):
        ensure_reward_model(RewardModelTrainConfig(n_pairs=4, n_eval=4), base_dir, progress=False)
