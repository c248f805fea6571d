"""Running each distinct prompt once gives the log-probs and gradients of the full forward."""

import copy

import torch

from r1lab.engines.hf import completion_logprobs
from r1lab.engines.shared_prompt import prompt_groups


def grouped_rows(vocab: int):
    """3 prompts of different lengths x 4 completions of different lengths (one empty)."""
    g = torch.Generator().manual_seed(0)
    prompts, completions = [], []
    for plen in (5, 2, 8):
        p = torch.randint(3, vocab, (plen,), generator=g).tolist()
        for clen in (7, 1, 0, 11):
            prompts.append(p)
            completions.append(torch.randint(3, vocab, (clen,), generator=g).tolist())
    return prompts, completions


def test_prompt_groups():
    assert prompt_groups([[1, 2], [3], [1, 2], [3], [4]]) == ([[1, 2], [3], [4]], [0, 1, 0, 1, 2])


def test_shared_prompt_logprobs_and_gradients_equal_the_full_forward(tiny_model, tiny_tokenizer):
    prompts, completions = grouped_rows(len(tiny_tokenizer))
    results = []
    for share in (True, False):
        model = copy.deepcopy(tiny_model).train()
        logp, mask, ent = completion_logprobs(
            model,
            prompts,
            completions,
            pad_id=0,
            temperature=0.9,
            with_entropy=True,
            share_prompts=share,
        )
        (logp * torch.linspace(-1, 1, logp.numel()).view_as(logp)).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((logp.detach(), mask, ent, grads))
    (lp_s, m_s, e_s, g_s), (lp_f, m_f, e_f, g_f) = results
    assert torch.equal(m_s, m_f) and m_s.sum() == sum(len(c) for c in completions)
    assert torch.allclose(lp_s, lp_f, atol=1e-5)
    assert torch.allclose(e_s, e_f, atol=1e-5)
    assert g_s.keys() == g_f.keys() and g_s
    for n in g_s:
        assert torch.allclose(g_s[n], g_f[n], atol=1e-5), n
