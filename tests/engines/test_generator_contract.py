"""The `Generator` contract, one suite run on every local rollout engine the factory
(`engines.generators.GENERATORS`) builds: HF always, vLLM where the [vllm] extra and a CUDA GPU
exist (skipped with the reason otherwise). The endpoint engine returns no token ids; its own
suite is test_openai_compat.py.

Contract: ``len(prompts) * n`` rollouts in prompt-major order; per rollout as many log-probs as
completion tokens, each <= 0 and equal (up to the engine's numerics) to the trainer's
teacher-forced log-prob under the processed sampling distribution; ``finish_reason`` "length"
exactly when the budget ran out without EOS; stop strings end the text; seeded calls repeat.
HF-only details (KV cache vs full forward to 1e-4, the top-k/top-p filter) stay in
test_hf_engine.py.
"""

from __future__ import annotations

import copy
import gc
import sys

import pytest
import torch

from r1lab.cli import main
from r1lab.engines.base import Generator
from r1lab.engines.generators import GENERATORS, build_generator
from r1lab.engines.hf import HFGenerator, completion_logprobs
from r1lab.engines.vllm import VLLMGenerator, vllm_unavailable_reason
from r1lab.errors import R1LabError
from r1lab.pipelines.rl_config import RolloutConfig
from r1lab.types import SamplingParams

PROMPTS = ["Compute 3 + 4", "Using the numbers 2, 5, make 10. Assistant:"]
SKIP_VLLM = "vLLM generator needs the [vllm] extra and a CUDA GPU; none here"
# how close each engine's sampler log-probs are to the trainer's (vLLM: other kernels)
LOGP_ATOL = {"hf": 1e-4, "vllm": 1e-2}
LOCAL_ENGINES = [name for name in GENERATORS.names() if name != "endpoint"]
ENGINE_CLASS = {"hf": HFGenerator, "vllm": VLLMGenerator}


@pytest.fixture(scope="module")
def policy(tiny_tokenizer):
    """A random 1M-parameter Qwen2 (head size 32, which every vLLM attention backend takes)."""
    from r1lab.models.tiny import build_model

    torch.set_num_threads(1)
    return build_model("1m", tiny_tokenizer, seed=0).eval()


@pytest.fixture(scope="module", params=LOCAL_ENGINES)
def engine(request, policy, tiny_tokenizer, tmp_path_factory):
    """The generator `build_generator` makes for ``rollout.engine`` = each registered name."""
    name = request.param
    if name == "vllm" and vllm_unavailable_reason() is not None:
        pytest.skip(SKIP_VLLM)
    rollout = RolloutConfig(
        engine=name, gpu_memory_utilization=0.2, max_model_len=256, enforce_eager=True
    )
    gen = build_generator(
        rollout,
        model=policy,
        tokenizer=tiny_tokenizer,
        batch_size=3,
        workdir=tmp_path_factory.mktemp("vllm_engine"),
    )
    assert type(gen) is ENGINE_CLASS[name]
    yield name, gen
    if name == "vllm":
        del gen.llm
        gc.collect()


def test_the_suite_covers_every_local_engine_of_the_factory():
    assert sorted(ENGINE_CLASS) == LOCAL_ENGINES == ["hf", "vllm"]


def trainer_logprobs(model, out, pad_id, temperature):
    with torch.no_grad():
        logp, mask = completion_logprobs(
            model,
            [r.prompt_ids for r in out],
            [r.completion_ids for r in out],
            pad_id=pad_id,
            temperature=temperature,
        )
    return logp, mask


def test_prompt_major_order_lengths_logprobs_and_finish_reasons(engine):
    _, gen = engine
    assert isinstance(gen, Generator)
    out = gen.generate(PROMPTS, 3, SamplingParams(max_new_tokens=12, seed=0))
    assert [(r.prompt_index, r.sample_index) for r in out] == [
        (i, j) for i in range(2) for j in range(3)
    ]
    assert [r.prompt for r in out] == [p for p in PROMPTS for _ in range(3)]
    for r in out:
        assert r.prompt_ids and len(r.completion_ids) == len(r.logprobs) <= 12
        assert r.finish_reason in ("stop", "length")
        hit_eos = any(t in gen.eos_ids for t in r.completion_ids)
        assert (r.finish_reason == "length") == (len(r.completion_ids) == 12 and not hit_eos)
        assert all(lp <= 0 for lp in r.logprobs)


def test_seeded_sampling_is_reproducible(engine):
    _, gen = engine
    sp = SamplingParams(max_new_tokens=10, seed=123)
    a = [r.completion_ids for r in gen.generate(PROMPTS, 4, sp)]
    b = [r.completion_ids for r in gen.generate(PROMPTS, 4, sp)]
    c = [
        r.completion_ids
        for r in gen.generate(PROMPTS, 4, SamplingParams(max_new_tokens=10, seed=7))
    ]
    assert a == b
    assert a != c


def test_stop_strings_and_min_new_tokens(engine):
    _, gen = engine
    out = gen.generate(PROMPTS, 3, SamplingParams(max_new_tokens=8, min_new_tokens=8, seed=0))
    assert all(len(r.completion_ids) == 8 for r in out)
    # a stop string made of a frequent single character stops early and ends the text
    out = gen.generate(PROMPTS, 4, SamplingParams(max_new_tokens=40, stop=(" ",), seed=0))
    stopped = [r for r in out if r.finish_reason == "stop" and " " in r.text]
    assert stopped
    for r in stopped:
        assert r.text.endswith(" ")


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampler_logprobs_are_the_trainers_under_the_processed_distribution(
    engine, policy, temperature
):
    name, gen = engine
    out = gen.generate(
        PROMPTS, 4, SamplingParams(max_new_tokens=16, temperature=temperature, seed=2)
    )
    logp, mask = trainer_logprobs(policy, out, gen.pad_id, temperature)
    for b, r in enumerate(out):
        ref = logp[b, : len(r.completion_ids)]
        assert torch.allclose(ref, torch.tensor(r.logprobs), atol=LOGP_ATOL[name])
        assert mask[b].sum() == len(r.completion_ids)


def test_vllm_sleeps_and_follows_the_policy_after_sync(engine, policy):
    name, gen = engine
    if name != "vllm":
        pytest.skip("colocated sleep / weight sync is vLLM's")
    changed = copy.deepcopy(policy)
    with torch.no_grad():
        for p in changed.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    sp = SamplingParams(max_new_tokens=16, seed=3)
    try:
        gen.sleep()
        with pytest.raises(R1LabError, match="asleep"):
            gen.generate(PROMPTS, 1, sp)
        gen.sync_weights(changed.state_dict())
        out = gen.generate(PROMPTS, 4, sp)
        new, _ = trainer_logprobs(changed, out, gen.pad_id, 1.0)
        old, _ = trainer_logprobs(policy, out, gen.pad_id, 1.0)
        got = torch.cat([torch.tensor(r.logprobs) for r in out])
        mask = [len(r.completion_ids) for r in out]
        new = torch.cat([new[b, :n] for b, n in enumerate(mask)])
        old = torch.cat([old[b, :n] for b, n in enumerate(mask)])
        assert torch.allclose(got, new, atol=LOGP_ATOL["vllm"])
        assert not torch.allclose(got, old, atol=LOGP_ATOL["vllm"])
    finally:
        gen.sync_weights(policy.state_dict())


@pytest.mark.skipif(vllm_unavailable_reason() is None, reason="vLLM and a GPU are here")
@pytest.mark.parametrize(
    "argv",
    [["rl", "r1_zero_tiny"], ["sample", "model.path=no/such/checkpoint"]],
    ids=["rl", "sample"],
)
def test_selecting_vllm_without_it_fails_with_one_line(
    argv, tmp_path, policy, tiny_tokenizer, capsys
):
    with pytest.raises(R1LabError, match="vLLM generator needs the \\[vllm\\] extra and a CUDA"):
        build_generator(
            RolloutConfig(engine="vllm"), model=policy, tokenizer=tiny_tokenizer, workdir=tmp_path
        )
    argv = [*argv, "rollout.engine=vllm", f"output_dir={tmp_path}", "run_name=v", "progress=false"]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("r1lab: error: rollout.engine=vllm: vLLM")
    assert "vllm" not in sys.modules  # nothing imported it
    assert not (tmp_path / "v").exists()  # failed before any run directory or model load
