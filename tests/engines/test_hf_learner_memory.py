"""Learner memory options: token-budget micro-batches and gradient checkpointing keep the
gradient of one big batch (issue 8 item 5)."""

import copy

import pytest
import torch

from r1lab.algo import policy_objective
from r1lab.engines.base import Learner as LearnerProtocol
from r1lab.engines.hf_learner import Learner, TrainBatch, micro_batches, padded


def random_batch(vocab: int, seed: int = 0) -> TrainBatch:
    g = torch.Generator().manual_seed(seed)
    prompts, completions = [], []
    for _ in range(10):
        p = int(torch.randint(2, 9, (1,), generator=g))
        c = int(torch.randint(1, 15, (1,), generator=g))
        prompts.append(torch.randint(3, vocab, (p,), generator=g).tolist())
        completions.append(torch.randint(3, vocab, (c,), generator=g).tolist())
    T = max(len(c) for c in completions)
    mask = padded([[1.0] * len(c) for c in completions], T)
    old = padded([(-torch.rand(len(c), generator=g) * 3).tolist() for c in completions], T)
    adv = torch.randn(10, 1, generator=g).expand(10, T) * mask
    return TrainBatch(prompts, completions, mask, old, adv.contiguous(), old - 0.1)


def loss_fn(logp, mb, *, entropy_BT, num_seqs, num_tokens):
    return policy_objective(
        logp,
        mb.old_logp_BT,
        mb.ref_logp_BT,
        mb.adv_BT,
        mb.mask_BT,
        agg="token_mean",
        kl="k3",
        beta=0.04,
        num_seqs=num_seqs,
        num_tokens=num_tokens,
    )


def gradient(model, batch: TrainBatch, **learner_kw) -> dict[str, torch.Tensor]:
    """The clipped gradient one `update` applies (captured before the optimizer step)."""
    model = copy.deepcopy(model)
    grads: dict[str, torch.Tensor] = {}

    class Capture(torch.optim.SGD):
        def step(self, closure=None):
            for n, p in model.named_parameters():
                if p.grad is not None:
                    grads[n] = p.grad.detach().clone()

    learner = Learner(
        model, lambda m: (Capture(m.parameters(), lr=0.0), None), max_grad_norm=1e9, **learner_kw
    )
    assert isinstance(learner, LearnerProtocol)  # logprobs, update, state, load_state
    learner.update(batch, loss_fn)
    return grads


def test_micro_batches_cover_every_row_once_within_the_budget():
    prompts = [[1] * n for n in (3, 8, 2, 5, 4, 7)]
    completions = [[2] * n for n in (9, 1, 4, 6, 12, 2)]
    assert micro_batches(prompts, completions, micro_batch_size=4) == [[0, 1, 2, 3], [4, 5]]
    mbs = micro_batches(prompts, completions, micro_batch_size=4, micro_batch_tokens=24)
    assert sorted(i for mb in mbs for i in mb) == list(range(6))
    lengths = [len(p) + len(c) for p, c in zip(prompts, completions)]
    for mb in mbs:
        assert len(mb) * max(lengths[i] for i in mb) <= 24 or len(mb) == 1
    # a row longer than the budget gets a micro-batch of its own
    assert [1] in micro_batches(
        [[1] * 30, [1]], [[2], [2]], micro_batch_size=4, micro_batch_tokens=8
    )


def test_token_budget_micro_batches_give_the_one_batch_gradient(tiny_model, tiny_tokenizer):
    batch = random_batch(len(tiny_tokenizer))
    one = gradient(tiny_model, batch, micro_batch_size=len(batch))
    packed = gradient(tiny_model, batch, micro_batch_size=len(batch), micro_batch_tokens=40)
    assert len(micro_batches(batch.prompt_ids, batch.completion_ids, micro_batch_size=10,
                             micro_batch_tokens=40)) > 2  # fmt: skip
    assert one.keys() == packed.keys() and one
    for n in one:
        assert torch.allclose(one[n], packed[n], atol=1e-5), n


def test_token_budget_reference_logprobs_equal_one_batch(tiny_model, tiny_tokenizer):
    batch = random_batch(len(tiny_tokenizer), seed=1)

    def sgd(m):
        return torch.optim.SGD(m.parameters(), lr=0.0), None

    one = Learner(tiny_model, sgd, micro_batch_size=10).logprobs(tiny_model, batch)
    packed = Learner(tiny_model, sgd, micro_batch_tokens=30).logprobs(tiny_model, batch)
    assert torch.allclose(one, packed, atol=1e-5)
    assert (one[batch.mask_BT == 0] == 0).all()


def test_gradient_checkpointing_keeps_the_gradient(tiny_model, tiny_tokenizer):
    batch = random_batch(len(tiny_tokenizer), seed=2)
    plain = gradient(tiny_model, batch, micro_batch_size=5)
    ckpt = gradient(tiny_model, batch, micro_batch_size=5, gradient_checkpointing=True)
    for n in plain:
        assert torch.allclose(plain[n], ckpt[n], atol=1e-5), n


def test_gradient_checkpointing_needs_support():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="does not support gradient checkpointing"):
        Learner(
            model, lambda m: (torch.optim.SGD(m.parameters()), None), gradient_checkpointing=True
        )
