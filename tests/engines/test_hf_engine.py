import torch

from r1lab.engines.base import Generator
from r1lab.engines.hf import HFGenerator, completion_logprobs, process_logits
from r1lab.types import SamplingParams

PROMPTS = ["Compute 3 + 4", "Using the numbers 2, 5, make 10. Assistant:"]


def test_protocol_order_and_shapes(tiny_model, tiny_tokenizer):
    gen = HFGenerator(tiny_model, tiny_tokenizer, batch_size=3)
    assert isinstance(gen, Generator)
    out = gen.generate(PROMPTS, 3, SamplingParams(max_new_tokens=12, seed=0))
    assert [(r.prompt_index, r.sample_index) for r in out] == [
        (i, j) for i in range(2) for j in range(3)
    ]
    for r in out:
        assert len(r.completion_ids) == len(r.logprobs) <= 12
        assert r.finish_reason in ("stop", "length")
        assert (r.finish_reason == "length") == (
            len(r.completion_ids) == 12 and not any(t in gen.eos_ids for t in r.completion_ids)
        )
        assert all(lp <= 0 for lp in r.logprobs)


def test_seeded_sampling_is_reproducible(tiny_model, tiny_tokenizer):
    gen = HFGenerator(tiny_model, tiny_tokenizer)
    sp = SamplingParams(max_new_tokens=10, seed=123)
    a = [r.completion_ids for r in gen.generate(PROMPTS, 4, sp)]
    b = [r.completion_ids for r in gen.generate(PROMPTS, 4, sp)]
    c = [
        r.completion_ids
        for r in gen.generate(PROMPTS, 4, SamplingParams(max_new_tokens=10, seed=7))
    ]
    assert a == b
    assert a != c


def test_logprobs_match_a_fresh_forward_pass(tiny_model, tiny_tokenizer):
    """Sampler log-probs (KV cache, left padding, batching) == teacher-forced full forward."""
    gen = HFGenerator(tiny_model, tiny_tokenizer, batch_size=5)
    for sp in (
        SamplingParams(max_new_tokens=16, seed=1),
        SamplingParams(max_new_tokens=16, temperature=0.7, seed=2),
    ):
        out = gen.generate(PROMPTS, 4, sp)
        with torch.no_grad():
            logp, mask = completion_logprobs(
                tiny_model,
                [r.prompt_ids for r in out],
                [r.completion_ids for r in out],
                pad_id=gen.pad_id,
                temperature=sp.temperature,
            )
        for b, r in enumerate(out):
            ref = logp[b, : len(r.completion_ids)]
            assert torch.allclose(ref, torch.tensor(r.logprobs), atol=1e-4)
            assert mask[b].sum() == len(r.completion_ids)


def test_top_k_top_p_filter_support():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
    lp = process_logits(logits, SamplingParams(top_k=2))
    assert torch.isinf(lp[0, 2:]).all() and torch.isclose(lp[0, :2].exp().sum(), torch.tensor(1.0))
    probs = logits.softmax(-1)[0]
    lp = process_logits(logits, SamplingParams(top_p=float(probs[0]) + 1e-3))
    assert torch.isfinite(lp[0, :2]).all() and torch.isinf(lp[0, 2:]).all()
    lp = process_logits(logits, SamplingParams(top_p=0.01))
    assert torch.isfinite(lp[0, 0]) and torch.isinf(lp[0, 1:]).all()


def test_stop_strings_and_min_new_tokens(tiny_model, tiny_tokenizer):
    gen = HFGenerator(tiny_model, tiny_tokenizer)
    out = gen.generate(PROMPTS, 3, SamplingParams(max_new_tokens=8, min_new_tokens=8, seed=0))
    assert all(len(r.completion_ids) == 8 for r in out)
    # a stop string made of a frequent single character stops early and ends the text
    out = gen.generate(PROMPTS, 4, SamplingParams(max_new_tokens=40, stop=(" ",), seed=0))
    for r in out:
        if r.finish_reason == "stop" and " " in r.text:
            assert r.text.endswith(" ")
