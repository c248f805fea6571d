"""LoRA (PEFT) policy: a GRPO run changes only adapter weights, the reference is the base model
with adapters disabled (no second copy), and the saved checkpoint is a plain HF directory with
the adapters merged in plus the adapter on its own."""

from __future__ import annotations

import copy
import json
import types

import pytest
import torch
from transformers import AutoModelForCausalLM

from r1lab.config import load_config
from r1lab.engines.hf import completion_logprobs
from r1lab.errors import ConfigError
from r1lab.models.lora import (
    ADAPTER_DIR,
    AdapterDisabledReference,
    apply_lora,
    merged_state_dict,
)
from r1lab.pipelines import grpo, grpo_policy
from r1lab.pipelines.rl_config import RLConfig
from r1lab.rewards import REWARDS, RewardResult

pytest.importorskip("peft")

if "digit_share" not in REWARDS:

    @REWARDS.register("digit_share")
    def digit_share(c, **_):
        """Share of completion characters that are digits: an easy, dense test signal."""
        text = c.text.strip()
        return RewardResult(sum(ch.isdigit() for ch in text) / max(1, len(text)))


TARGETS = ("q_proj", "v_proj", "up_proj")
PROMPTS = [[5, 6, 7, 8], [9, 10, 11]]
COMPLETIONS = [[12, 13, 14], [15, 16]]


def adapter_parameters(peft_model) -> dict[str, torch.nn.Parameter]:
    """The trainable adapter parameters by name (all ``lora_`` parameters)."""
    return {n: p for n, p in peft_model.get_base_model().named_parameters() if ".lora_" in n}


def lora_of(model):
    return apply_lora(model, r=4, alpha=8.0, dropout=0.0, target_modules=TARGETS)


def perturb_adapters(peft_model, seed: int = 0) -> None:
    """LoRA B starts at zero (adapter = identity); give it values so adapters change outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter_parameters(peft_model).values():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def logp(model, pad_id):
    with torch.no_grad():
        return completion_logprobs(model, PROMPTS, COMPLETIONS, pad_id=pad_id)[0]


def test_a_lora_grpo_run_changes_only_adapter_weights(
    tmp_path, tiny_model, tiny_tokenizer, monkeypatch
):
    base_before = {k: v.clone() for k, v in tiny_model.state_dict().items()}

    def no_copies(*_, **__):
        raise AssertionError("a LoRA run must not copy the model for its reference")

    monkeypatch.setattr(grpo_policy, "copy", types.SimpleNamespace(deepcopy=no_copies))
    cfg = load_config(
        RLConfig,
        "r1_zero_tiny",
        [
            f"output_dir={tmp_path}",
            "run_name=lora",
            "progress=false",
            "threads=1",
            "data.template=plain",
            "data.n_train=32",
            "grpo.steps=3",
            "grpo.prompts_per_step=2",
            "grpo.mini_batches=2",
            "grpo.group_size=4",
            "grpo.lr=0.05",
            "grpo.beta=0.04",  # the KL reference is used: adapters-disabled base
            "sampling.max_new_tokens=8",
            "sampling.stop=[]",
            "rewards=[{name: digit_share}]",
            "lora.enabled=true",
            "lora.r=4",
            f"lora.target_modules=[{', '.join(TARGETS)}]",
        ],
    )
    res = grpo.run(cfg, model=tiny_model, tokenizer=tiny_tokenizer, log=lambda *_: None)
    assert len(res.metrics) == 3 and all("kl" in m for m in res.metrics)

    after = tiny_model.state_dict()  # PEFT injected its layers into this very model
    adapters = {k: v for k, v in after.items() if ".lora_" in k}
    base_after = {k.replace(".base_layer.", "."): v for k, v in after.items() if ".lora_" not in k}
    assert set(base_after) == set(base_before)
    assert all(torch.equal(base_after[k], base_before[k]) for k in base_before)
    lora_b = [k for k in adapters if ".lora_B." in k]
    assert lora_b and all(adapters[k].abs().sum() > 0 for k in lora_b)  # B starts at exactly 0

    # checkpoint/: plain transformers directory with the adapters merged in
    plain = AutoModelForCausalLM.from_pretrained(res.checkpoint)
    assert set(plain.state_dict()) == set(base_before)
    ids = torch.tensor([PROMPTS[0] + COMPLETIONS[0]])
    with torch.no_grad():
        assert torch.allclose(plain(ids).logits, tiny_model(ids).logits, atol=1e-5)
        changed = [k for k in base_before if not torch.equal(plain.state_dict()[k], base_before[k])]
    assert any("q_proj" in k for k in changed)
    # checkpoint/adapter/: the PEFT adapter alone
    adapter_cfg = json.loads((res.checkpoint / ADAPTER_DIR / "adapter_config.json").read_text())
    assert adapter_cfg["r"] == 4 and set(adapter_cfg["target_modules"]) == set(TARGETS)


def test_reference_is_the_base_with_adapters_disabled_and_shares_its_weights(
    tiny_model, tiny_tokenizer
):
    base = copy.deepcopy(tiny_model)  # the oracle (the library itself makes no copy)
    pad = tiny_tokenizer.pad_token_id
    peft_model = lora_of(tiny_model)
    perturb_adapters(peft_model)
    policy = peft_model.get_base_model()
    ref = AdapterDisabledReference(peft_model)

    base_logp, policy_logp, ref_logp = logp(base, pad), logp(policy, pad), logp(ref, pad)
    assert not torch.allclose(policy_logp, base_logp, atol=1e-3)  # adapters matter
    assert torch.allclose(ref_logp, base_logp, atol=1e-6)
    assert torch.allclose(logp(policy, pad), policy_logp, atol=0)  # adapters back on afterwards
    with peft_model.disable_adapter():
        assert torch.allclose(logp(policy, pad), base_logp, atol=1e-6)

    policy_params = {id(p) for p in policy.parameters()}
    assert {id(p) for p in ref.parameters()} == policy_params  # no second copy
    opt, _ = grpo_policy.make_optimizer(policy, RLConfig().grpo)
    trained = {id(p) for group in opt.param_groups for p in group["params"]}
    assert trained == {id(p) for p in adapter_parameters(peft_model).values()}


def test_merged_state_dict_is_the_adapted_model_under_plain_names(tiny_model, tiny_tokenizer):
    plain_keys = set(tiny_model.state_dict())
    fresh = copy.deepcopy(tiny_model)
    peft_model = lora_of(tiny_model)
    perturb_adapters(peft_model, seed=1)
    before = {k: v.clone() for k, v in peft_model.get_base_model().state_dict().items()}
    merged = merged_state_dict(peft_model)
    assert set(merged) == plain_keys
    fresh.load_state_dict(merged)
    pad = tiny_tokenizer.pad_token_id
    assert torch.allclose(logp(fresh, pad), logp(peft_model.get_base_model(), pad), atol=1e-5)
    now = peft_model.get_base_model().state_dict()
    assert all(torch.equal(now[k], before[k]) for k in before)  # nothing merged in place


def test_bad_lora_settings_fail_with_one_line(tiny_model):
    with pytest.raises(ConfigError, match="no module named nope_proj"):
        apply_lora(tiny_model, r=4, alpha=8.0, dropout=0.0, target_modules=("q_proj", "nope_proj"))
    with pytest.raises(ConfigError, match="lm_head not supported"):
        apply_lora(tiny_model, r=4, alpha=8.0, dropout=0.0, target_modules=("lm_head",))
    with pytest.raises(ConfigError, match="lora.r must be >= 1"):
        apply_lora(tiny_model, r=0, alpha=8.0, dropout=0.0, target_modules=("q_proj",))
