"""The supervised losses: SFT/pretraining token-mean NLL and the reward model's Bradley-Terry."""

from __future__ import annotations

import math

import pytest
import torch

from r1lab.algo import AlgoError, bradley_terry, nll_token_mean


def test_nll_is_the_mean_over_masked_tokens_only():
    logp = torch.tensor([[-1.0, -2.0, -9.0], [-3.0, -7.0, -7.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    loss, metrics = nll_token_mean(logp, mask)
    assert loss.item() == pytest.approx((1 + 2 + 3) / 3) and metrics == {}
    # a global token count (gradient accumulation, N ranks) replaces this batch's own
    assert nll_token_mean(logp, mask, num_tokens=6.0)[0].item() == pytest.approx(1.0)
    with pytest.raises(AlgoError):
        nll_token_mean(logp, mask[:, :2])


def test_nll_gradient_reaches_masked_tokens_only():
    logp = torch.tensor([[-1.0, -2.0], [-3.0, -4.0]], requires_grad=True)
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    nll_token_mean(logp, mask)[0].backward()
    assert torch.equal(logp.grad, -mask / 3)


def test_bradley_terry_and_pair_accuracy():
    margin = torch.tensor([2.0, -1.0, 0.5, 0.0])
    loss, metrics = bradley_terry(margin)
    want = -sum(math.log(1 / (1 + math.exp(-m))) for m in (2.0, -1.0, 0.5, 0.0)) / 4
    assert loss.item() == pytest.approx(want)
    assert metrics["pair_acc"].item() == pytest.approx(0.5)  # a tie is not ordered right
    assert bradley_terry(margin, num_pairs=8.0)[0].item() == pytest.approx(want / 2)
