"""`grpo.is_correction=tis` in the GRPO loop: the mismatch between sampler and trainer log-probs
is logged, and the truncated importance weights reach the policy gradient (a setup whose
gradient is not 0: the reward is the completion's length in characters, which differs within a
group). Edit caught: `rl_step.objective` not passing ``token_weight_BT``."""

from __future__ import annotations

import pytest

from r1lab.config import load_config
from r1lab.errors import ConfigError
from r1lab.models.tiny import build_model
from r1lab.pipelines import grpo
from r1lab.pipelines.rl_config import RLConfig
from r1lab.registry import RegistryError
from r1lab.rewards import REWARDS, RewardResult

if "char_count" not in REWARDS:

    @REWARDS.register("char_count")
    def char_count(c, **_):
        """Characters of the completion / 10: differs between the samples of a group."""
        return RewardResult(len(c.text) / 10)


def one_step(tmp_path, tokenizer, *extra):
    cfg = load_config(
        RLConfig,
        "r1_zero_tiny",
        [
            f"output_dir={tmp_path}",
            "run_name=is",
            "progress=false",
            "threads=1",
            "data.template=plain",
            "data.n_train=16",
            "grpo.steps=1",
            "grpo.prompts_per_step=2",
            "grpo.mini_batches=1",  # one update: its gradient norm is the step's
            "grpo.group_size=4",
            "grpo.beta=0.0",  # the whole gradient is the (weighted) policy term
            "sampling.max_new_tokens=8",
            "sampling.stop=[]",
            "rewards=[{name: char_count}]",
            *extra,
        ],
    )
    model = build_model("test", tokenizer, seed=0)
    return grpo.run(cfg, model=model, tokenizer=tokenizer, log=lambda *_: None).metrics[0]


def test_tis_logs_the_mismatch_and_weights_the_policy_gradient(tmp_path, tiny_tokenizer):
    off = one_step(tmp_path / "off", tiny_tokenizer)
    assert "mismatch/is_weight_mean" not in off  # trainer old log-probs: mismatch, no weights
    assert off["grad_norm"] > 1e-3  # a gradient for the weights to scale
    sampler = one_step(tmp_path / "s", tiny_tokenizer, "grpo.old_logprobs=sampler")
    assert not any(k.startswith("mismatch/") for k in sampler)
    tis = one_step(tmp_path / "tis", tiny_tokenizer, "grpo.is_correction=tis", "grpo.is_cap=2.0")
    # the HF sampler and the trainer compute the same distribution: no mismatch, weights 1
    assert tis["mismatch/abs_logp_diff"] < 1e-4
    assert tis["mismatch/k3"] < 1e-6
    assert tis["mismatch/is_weight_mean"] == pytest.approx(1.0, abs=1e-4)
    assert tis["mismatch/is_capped_frac"] == 0.0
    assert tis["grad_norm"] == pytest.approx(off["grad_norm"], rel=1e-3)
    # a cap far below 1 makes every weight the cap: the gradient shrinks by exactly that factor
    tiny = one_step(tmp_path / "cap", tiny_tokenizer, "grpo.is_correction=tis", "grpo.is_cap=1e-3")
    assert tiny["mismatch/is_capped_frac"] == 1.0
    assert tiny["grad_norm"] == pytest.approx(1e-3 * off["grad_norm"], rel=1e-3)


def test_unknown_is_correction_fails_with_the_known_names(tmp_path, tiny_tokenizer):
    with pytest.raises(RegistryError, match="tis"):
        one_step(tmp_path, tiny_tokenizer, "grpo.is_correction=nope")


def test_tis_needs_the_trainer_old_logprobs(tmp_path, tiny_tokenizer):
    with pytest.raises(ConfigError, match="grpo.old_logprobs=trainer"):
        one_step(tmp_path, tiny_tokenizer, "grpo.is_correction=tis", "grpo.old_logprobs=sampler")


def test_the_qwen_math_vllm_recipe_loads():
    cfg = load_config(RLConfig, "r1_zero_qwen_math_1p5b", ["lora.enabled=true"])
    assert cfg.rollout.engine == "vllm" and cfg.grpo.is_correction == "tis"
    assert cfg.model.path == "Qwen/Qwen2.5-Math-1.5B" and cfg.rollout.dtype == "bfloat16"
    assert cfg.lora.enabled and "q_proj" in cfg.lora.target_modules
