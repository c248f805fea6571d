"""Padding-free packing: a packed batch gives the same per-sample losses (and gradient) as the same
samples padded, and attention never crosses a sample boundary."""

from __future__ import annotations

import pytest
import torch

from r1lab.algo import nll_token_mean
from r1lab.data.chat import row_to_conversation, tokenize_conversation
from r1lab.pipelines.sft_batching import (
    SFTBatch,
    collate_packed,
    collate_padded,
    plan_batches,
    target_logprobs,
)


def per_sample_nll(logp: torch.Tensor, batch: SFTBatch) -> torch.Tensor:
    """Mean NLL of each sample's targets, (num_samples,), read back through ``seq_id``."""
    nll = (-logp * batch.mask.to(logp.device)).flatten()
    sid = batch.seq_id.flatten().to(logp.device)
    keep = sid >= 0
    sums = torch.zeros(batch.num_samples, dtype=nll.dtype, device=nll.device)
    counts = torch.zeros_like(sums)
    sums.index_add_(0, sid[keep], nll[keep])
    counts.index_add_(0, sid[keep], torch.ones_like(nll[keep]))
    return sums / counts.clamp(min=1)


ROWS = [
    {"prompt": "Compute 3 + 4", "completion": "3 + 4 = 7. The answer is 7."},
    {"prompt": "Who are you?", "completion": "A tiny model."},
    {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "Compute 12 - 5 + 1"},
            {"role": "assistant", "content": "12 - 5 = 7. 7 + 1 = 8."},
            {"role": "user", "content": "double it"},
            {"role": "assistant", "content": "16"},
        ]
    },
    {"prompt": "x", "completion": "y"},
]


@pytest.fixture()
def samples(tiny_tokenizer):
    return [
        tokenize_conversation(tiny_tokenizer, row_to_conversation(r, f"r{i}"))
        for i, r in enumerate(ROWS)
    ]


@pytest.fixture()
def model(tiny_model):
    torch.manual_seed(0)
    with torch.no_grad():  # a non-trivial model: random init scaled up so logits vary
        for p in tiny_model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return tiny_model.eval()


@torch.no_grad()
def oracle_nll(model, sample) -> float:
    """Slow, obvious: one sample alone, plain forward, mean NLL of its target tokens."""
    ids = torch.tensor([sample.input_ids])
    logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
    terms = [
        -logp[t - 1, sample.input_ids[t]] for t in range(1, len(ids[0])) if sample.loss_mask[t]
    ]
    return float(sum(terms) / len(terms))


def test_packed_equals_padded_equals_alone(model, samples):
    lengths = {len(s.input_ids) for s in samples}
    assert len(lengths) > 1  # different lengths, so padding really happens
    with torch.no_grad():
        packed = collate_packed(samples)
        padded = collate_padded(samples, pad_id=0)
        nll_packed = per_sample_nll(target_logprobs(model, packed), packed)
        nll_padded = per_sample_nll(target_logprobs(model, padded), padded)
    oracle = torch.tensor([oracle_nll(model, s) for s in samples], dtype=torch.float32)
    assert packed.input_ids.shape == (1, sum(len(s.input_ids) for s in samples))
    assert torch.allclose(nll_packed, oracle, atol=1e-5), (nll_packed, oracle)
    assert torch.allclose(nll_padded, oracle, atol=1e-5), (nll_padded, oracle)
    assert packed.num_targets == padded.num_targets == sum(s.num_targets for s in samples)


def test_attention_crossing_boundaries_would_be_detected(model, samples):
    """Negative controls: the same packed row with a full 2D mask (attention crosses samples) or
    with positions that do not restart gives different losses, so the test above can fail."""
    with torch.no_grad():
        good = collate_packed(samples)
        ref = per_sample_nll(target_logprobs(model, good), good)
        leaky = collate_packed(samples)
        leaky.attention_mask = torch.ones_like(leaky.input_ids)
        crossed = per_sample_nll(target_logprobs(model, leaky), leaky)
        shifted = collate_packed(samples)
        shifted.position_ids = torch.arange(shifted.input_ids.shape[1]).unsqueeze(0)
        moved = per_sample_nll(target_logprobs(model, shifted), shifted)
    assert torch.allclose(crossed[0], ref[0], atol=1e-6)  # the first sample sees nothing before it
    assert (crossed[1:] - ref[1:]).abs().max() > 1e-3
    assert (moved[1:] - ref[1:]).abs().max() > 1e-4


def test_packed_and_padded_gradients_match(model, samples):
    grads = []
    for batch in (collate_packed(samples), collate_padded(samples, pad_id=0)):
        model.zero_grad()
        nll_token_mean(target_logprobs(model, batch), batch.mask)[0].backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    assert grads[0].abs().sum() > 0


@pytest.mark.parametrize(
    ("lengths", "budget", "expected"),
    [
        ([3, 3, 3], 6, [[0, 1], [2]]),
        ([3, 3, 3], 5, [[0], [1], [2]]),
        ([10, 1, 1], 4, [[0], [1, 2]]),  # an over-long sample gets a batch of its own
        ([2, 2, 2, 2], 100, [[0, 1, 2, 3]]),
    ],
)
def test_plan_batches(lengths, budget, expected):
    assert plan_batches(lengths, range(len(lengths)), budget) == expected
