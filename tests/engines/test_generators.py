"""`build_generator`: which engine a rollout / endpoint section selects, and the endpoint's
settings as the generator gets them (the local engines run in test_generator_contract.py)."""

from __future__ import annotations

import pytest

from r1lab.config import load_config
from r1lab.engines.generators import EndpointConfig, build_generator
from r1lab.engines.hf import HFGenerator
from r1lab.engines.openai_compat import OpenAICompatGenerator
from r1lab.errors import ConfigError
from r1lab.pipelines.rl_config import RolloutConfig
from r1lab.pipelines.rs_config import RSConfig

URL = "http://127.0.0.1:9/v1"


def test_no_rollout_section_and_an_empty_endpoint_mean_the_hf_engine(tiny_model, tiny_tokenizer):
    for rollout in (None, RolloutConfig()):
        gen = build_generator(
            rollout,
            endpoint=EndpointConfig(),
            model=tiny_model,
            tokenizer=tiny_tokenizer,
            batch_size=5,
        )
        assert type(gen) is HFGenerator and gen.batch_size == 5 and gen.model is tiny_model


def test_an_endpoint_url_selects_the_endpoint_with_its_settings(monkeypatch):
    monkeypatch.setenv("R1LAB_TEST_KEY", "sk-1")
    ep = EndpointConfig(
        URL,
        "teacher",
        api_key_env="R1LAB_TEST_KEY",
        system_prompt="Be brief.",
        timeout_s=7.0,
        max_retries=2,
        backoff_s=0.5,
        concurrency=3,
    )
    gen = build_generator(RolloutConfig(), endpoint=ep, mode="completions")
    assert type(gen) is OpenAICompatGenerator
    assert gen.url == URL + "/completions" and gen.model == "teacher" and gen.api_key == "sk-1"
    assert (gen.system_prompt, gen.timeout_s, gen.max_retries) == ("Be brief.", 7.0, 2)
    assert (gen.backoff_s, gen.concurrency, gen.batch_size) == (0.5, 3, 12)
    assert build_generator(endpoint=ep).url == URL + "/chat/completions"  # chat by default


def test_a_named_but_unset_api_key_and_two_samplers_are_errors(monkeypatch):
    monkeypatch.delenv("R1LAB_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"api_key_env names \$R1LAB_TEST_KEY, which is not set"):
        build_generator(endpoint=EndpointConfig(URL, "m", api_key_env="R1LAB_TEST_KEY"))
    with pytest.raises(ConfigError, match="rollout.engine=vllm and endpoint"):
        build_generator(RolloutConfig(engine="vllm"), endpoint=EndpointConfig(URL, "m"))


def test_sampling_config_holds_a_rollout_section_and_the_shared_sampling_checks():
    cfg = load_config(RSConfig, None, ["rollout.engine=vllm", "rollout.max_model_len=512"])
    assert cfg.rollout == RolloutConfig(engine="vllm", max_model_len=512)
    s = RSConfig().sampling  # rejection sampling's own defaults over the shared sampling section
    assert (s.temperature, s.top_p, s.max_new_tokens, s.stop) == (0.7, 0.95, 128, ())
    with pytest.raises(ConfigError, match="sampling.top_p"):
        load_config(RSConfig, None, ["sampling.top_p=0"])
    with pytest.raises(ConfigError, match="rollout.engine"):
        load_config(RSConfig, None, ["rollout.engine=sglang"])
