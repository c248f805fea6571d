"""Log-probs and entropies: against plain log_softmax, and chunked == unchunked (values, grads)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from r1lab.algo import AlgoError, entropy_from_logits, logprobs_from_hidden, token_logprobs


def data(B=3, T=5, H=8, V=11, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, T, H, generator=gen, dtype=dtype)
    weight = torch.randn(V, H, generator=gen, dtype=dtype)
    bias = torch.randn(V, generator=gen, dtype=dtype)
    targets = torch.randint(0, V, (B, T), generator=gen)
    return hidden, weight, bias, targets


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_token_logprobs_and_entropy_match_log_softmax(temperature):
    hidden, weight, bias, targets = data()
    logits = F.linear(hidden, weight, bias)
    lp_all = torch.log_softmax(logits / temperature, -1)
    want_lp = lp_all.gather(-1, targets[..., None]).squeeze(-1)
    want_ent = -(lp_all.exp() * lp_all).sum(-1)
    assert torch.allclose(token_logprobs(logits, targets, temperature), want_lp, atol=1e-12)
    assert torch.allclose(entropy_from_logits(logits, temperature), want_ent, atol=1e-12)


def test_low_precision_logits_are_upcast_per_row():
    hidden, weight, bias, targets = data(dtype=torch.float32)
    logits16 = F.linear(hidden, weight, bias).to(torch.bfloat16)
    got = token_logprobs(logits16, targets)
    assert got.dtype == torch.float32
    assert torch.allclose(got, token_logprobs(logits16.float(), targets), atol=1e-6)
    ent = entropy_from_logits(logits16)
    assert torch.allclose(ent, entropy_from_logits(logits16.float()), atol=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 4, 7, 100])
@pytest.mark.parametrize("use_bias", [False, True])
def test_chunked_from_hidden_equals_unchunked(chunk_size, use_bias):
    hidden, weight, bias, targets = data()
    bias = bias if use_bias else None
    leaves = [hidden, weight] + ([bias] if use_bias else [])
    a = [t.clone().requires_grad_(True) for t in leaves]
    b = [t.clone().requires_grad_(True) for t in leaves]
    upstream_lp = torch.randn(targets.shape, dtype=torch.float64)
    upstream_ent = torch.randn(targets.shape, dtype=torch.float64)

    logits = F.linear(a[0], a[1], a[2] if use_bias else None)
    want_lp = token_logprobs(logits, targets, temperature=0.8)
    want_ent = entropy_from_logits(logits, temperature=0.8)
    ((want_lp * upstream_lp).sum() + (want_ent * upstream_ent).sum()).backward()

    got_lp, got_ent = logprobs_from_hidden(
        b[0],
        b[1],
        targets,
        temperature=0.8,
        chunk_size=chunk_size,
        bias_V=b[2] if use_bias else None,
        with_entropy=True,
    )
    ((got_lp * upstream_lp).sum() + (got_ent * upstream_ent).sum()).backward()

    assert torch.allclose(got_lp, want_lp, atol=1e-12)
    assert torch.allclose(got_ent, want_ent, atol=1e-12)
    for x, y in zip(a, b):
        assert torch.allclose(x.grad, y.grad, atol=1e-10)
        assert x.grad.abs().sum() > 0


def test_from_hidden_without_grad_and_logp_only():
    hidden, weight, _, targets = data()
    with torch.no_grad():
        lp = logprobs_from_hidden(hidden, weight, targets, chunk_size=3)
    assert lp.shape == targets.shape and not lp.requires_grad
    assert torch.allclose(lp, token_logprobs(F.linear(hidden, weight), targets), atol=1e-12)


def test_chunked_keeps_no_logits_for_backward():
    """Checkpointing: the autograd graph keeps the inputs, not the logits. Without it, every
    chunk's (chunk_size x V) logits stay saved and together make a full B x T x V."""
    hidden, weight, _, targets = data(B=4, T=16, H=8, V=50)
    hidden.requires_grad_(True)
    saved: dict[tuple[int, int], int] = {}

    def pack(t):
        saved[(t.data_ptr(), t.numel())] = t.numel()  # views of one storage count once
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        lp, ent = logprobs_from_hidden(hidden, weight, targets, chunk_size=8, with_entropy=True)
    assert sum(saved.values()) < 4 * 16 * 50
    (lp.sum() + ent.sum()).backward()
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0


def test_bad_inputs_fail_clearly():
    hidden, weight, _, targets = data()
    with pytest.raises(AlgoError, match="targets must be token ids in"):
        token_logprobs(F.linear(hidden, weight), targets + 100)
    with pytest.raises(AlgoError, match="temperature"):
        logprobs_from_hidden(hidden, weight, targets, temperature=0.0)
    with pytest.raises(AlgoError, match=r"lm_head_weight_VH must have shape \(\*, 8\)"):
        logprobs_from_hidden(hidden, weight[:, :4], targets)
    with pytest.raises(AlgoError, match="chunk_size"):
        logprobs_from_hidden(hidden, weight, targets, chunk_size=0)
