"""Fused RMSNorm / SwiGLU modules (engines/fused_modules.py) against the `transformers` ones."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from test_cpu_kernels import _tiny_qwen2  # same directory (pytest prepend import mode)
from transformers.models.llama.modeling_llama import LlamaConfig, LlamaMLP, LlamaRMSNorm
from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

from r1lab.engines import c_kernels, cpu_kernels, fused_modules
from r1lab.engines.kv_decode import KVDecoder


@pytest.fixture(autouse=True)
def one_thread():
    """The training kernels run only when torch runs on one thread (`fused_modules._fusable`)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _grads(module, *inputs, dy):
    inputs = [x.detach().clone().requires_grad_() for x in inputs]
    module.zero_grad()
    y = module(*inputs)
    y.backward(dy)
    return (
        y.detach(),
        [x.grad for x in inputs],
        {n: p.grad.clone() for n, p in module.named_parameters()},
    )


@pytest.mark.parametrize("cls", [Qwen2RMSNorm, LlamaRMSNorm])
def test_fused_rmsnorm_matches_transformers(cls):
    torch.manual_seed(0)
    ref = cls(40, eps=1e-5)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
    fused = copy.deepcopy(ref)
    assert fused_modules.enable(fused) == 1
    assert isinstance(fused, cls) and type(fused) is not cls
    x = torch.randn(3, 7, 40).transpose(0, 1)  # not contiguous
    dy = torch.randn(7, 3, 40)
    y0, (dx0,), dw0 = _grads(ref, x, dy=dy)
    y1, (dx1,), dw1 = _grads(fused, x, dy=dy)
    torch.testing.assert_close(y1, y0, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(dx1, dx0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dw1["weight"], dw0["weight"], rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), y0, rtol=1e-6, atol=1e-6)
    half = x.to(torch.bfloat16)  # not float32: the original forward, exactly
    assert torch.equal(fused.to(torch.bfloat16)(half), ref.to(torch.bfloat16)(half))


def test_fused_swiglu_mlp_matches_transformers():
    torch.manual_seed(1)
    cfg = LlamaConfig(
        hidden_size=24, intermediate_size=40, num_attention_heads=4, hidden_act="silu"
    )
    ref = LlamaMLP(cfg)
    fused = copy.deepcopy(ref)
    assert fused_modules.enable(fused) == 1
    x = torch.randn(5, 3, 24) * 3
    dy = torch.randn(5, 3, 24)
    y0, (dx0,), g0 = _grads(ref, x, dy=dy)
    y1, (dx1,), g1 = _grads(fused, x, dy=dy)
    torch.testing.assert_close(y1, y0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dx1, dx0, rtol=1e-5, atol=1e-6)
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=1e-5, atol=1e-6, msg=name)
    gelu = LlamaMLP(
        LlamaConfig(hidden_size=8, intermediate_size=16, num_attention_heads=2, hidden_act="gelu")
    )
    assert fused_modules.enable(gelu) == 0  # only SiLU MLPs are fused


def test_enable_on_a_model_keeps_state_pickles_and_kv_decode_still_fuses(monkeypatch):
    model = _tiny_qwen2()
    ids = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        before = model(ids).logits
    keys = list(model.state_dict())
    layers = len(model.model.layers)
    assert fused_modules.enable(model) == 4 * layers + 1  # 2 norms, MLP, attention; final norm
    assert fused_modules.enable(model) == 0  # idempotent
    assert list(model.state_dict()) == keys
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, before, rtol=1e-5, atol=1e-5)
    norm = model.model.norm
    assert type(pickle.loads(pickle.dumps(norm))) is type(norm)
    assert type(copy.deepcopy(model).model.norm) is type(norm)
    monkeypatch.setenv(c_kernels.ENV, "c")
    assert KVDecoder(model, torch.ones(2, 3, dtype=torch.long), 4).ck is not None
    monkeypatch.setenv(c_kernels.ENV, "torch")
    assert fused_modules.enable(_tiny_qwen2()) == 0


def test_transposed_copy_of_the_linear_backward():
    x = torch.randn(37, 21)
    assert torch.equal(cpu_kernels._t(x), x.t().contiguous())
    assert cpu_kernels._t(x).is_contiguous()
    wide = torch.randn(5, 40)[:, 3:30]  # rows 40 floats apart
    assert torch.equal(c_kernels.load().transpose(wide), wide.t().contiguous())


def _count_fused_attention(monkeypatch) -> list:
    calls = []
    real = fused_modules._AttnFn.forward
    monkeypatch.setattr(
        fused_modules._AttnFn,
        "forward",
        staticmethod(lambda ctx, *a: calls.append(tuple(a[3].shape)) or real(ctx, *a)),
    )
    return calls


@pytest.mark.parametrize("gqa", [False, True])
def test_fused_attention_model_matches_transformers_with_padding(gqa, monkeypatch):
    from test_kv_decode import llama_gqa

    torch.manual_seed(5)
    ref = (llama_gqa(50) if gqa else _tiny_qwen2(seed=5)).train()
    fused = copy.deepcopy(ref)
    assert fused_modules.enable(fused) > 0
    assert type(fused.model.layers[0].self_attn).__name__.startswith("Fused")
    calls = _count_fused_attention(monkeypatch)
    ids = torch.randint(0, 50, (3, 10))
    attn = torch.ones(3, 10, dtype=torch.long)
    attn[1, :4] = 0  # left padding: rows of fully masked queries
    labels = ids.masked_fill(attn == 0, -100)
    for model in (ref, fused):
        model.zero_grad()
        model(input_ids=ids, attention_mask=attn, labels=labels).loss.backward()
    assert len(calls) == len(fused.model.layers) and calls[0] == (3, 10, 10)
    with torch.no_grad():
        diff = (
            ref(input_ids=ids, attention_mask=attn).logits - fused(ids, attention_mask=attn).logits
        )
    assert diff[attn.bool()].abs().max() < 1e-5
    for (name, p0), (_, p1) in zip(ref.named_parameters(), fused.named_parameters()):
        torch.testing.assert_close(p1.grad, p0.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_fused_attention_over_a_shared_prompt_cache(monkeypatch):
    """The teacher-forced pass that runs each prompt once (a `transformers` cache holds its
    K/V): values and gradients as the `transformers` attention gives."""
    from r1lab.engines.hf import completion_logprobs

    ref = _tiny_qwen2(seed=6).train()
    fused = copy.deepcopy(ref)
    fused_modules.enable(fused)
    calls = _count_fused_attention(monkeypatch)
    prompts = [[5, 6, 7]] * 3 + [[9, 4]] * 2
    completions = [[8, 9, 10, 11], [8, 3], [12, 13, 14], [1, 2, 3, 4, 5], [6]]
    out = []
    for model in (ref, fused):
        model.zero_grad()
        logp, mask = completion_logprobs(model, prompts, completions, pad_id=0)
        (logp * mask).sum().backward()
        out.append((logp.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    assert any(shape[-1] > shape[-2] for shape in calls)  # queries over prompt + own keys
    torch.testing.assert_close(out[1][0], out[0][0], rtol=1e-5, atol=1e-5)
    for name, g in out[0][1].items():
        torch.testing.assert_close(out[1][1][name], g, rtol=1e-4, atol=1e-6, msg=name)


def test_attention_keeps_its_own_forward_for_other_masks(monkeypatch):
    model = _tiny_qwen2(seed=7)
    model.config._attn_implementation = "eager"  # additive float masks: not handled here
    ids = torch.randint(0, 50, (2, 6))
    with torch.no_grad():
        before = model(ids).logits
    fused_modules.enable(model)
    calls = _count_fused_attention(monkeypatch)
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, before, rtol=1e-5, atol=1e-5)
    assert calls == []


def test_threads_decode_splits_and_training_takes_the_pytorch_ops(monkeypatch):
    """With several torch threads, large decode calls run in row chunks on several threads
    (`c_kernels._split`): forcing the split gives the single-chunk logits bit for bit. Training
    then takes the PyTorch ops (the training kernels are single-threaded): no fused call, and the
    gradients equal the one-thread fused ones."""
    from test_kv_decode import llama_gqa

    chunks = []
    real_split = c_kernels._split

    def counting(n, work, call):
        chunks.append(max(1, min(torch.get_num_threads(), n, work // c_kernels.PARALLEL_MIN)))
        real_split(n, work, call)

    monkeypatch.setattr(c_kernels, "_split", counting)
    monkeypatch.setenv(c_kernels.ENV, "c")
    attn_calls = _count_fused_attention(monkeypatch)
    model = llama_gqa(50).train()
    fused_modules.enable(model)
    ids = torch.randint(0, 50, (4, 9))
    attn = torch.ones(4, 9, dtype=torch.long)
    attn[2, :3] = 0
    runs = []
    threads = torch.get_num_threads()
    try:
        for split in (False, True):
            torch.set_num_threads(3 if split else 1)
            if split:
                monkeypatch.setattr(c_kernels, "PARALLEL_MIN", 1)
            chunks.clear()
            attn_calls.clear()
            model.zero_grad()
            model(input_ids=ids, attention_mask=attn, labels=ids).loss.backward()
            assert bool(attn_calls) is not split
            dec = KVDecoder(model.eval(), attn, 3)
            logits = [dec.prefill(ids)] + [dec.step(ids[:, t : t + 1], 9 + t) for t in range(3)]
            model.train()
            runs.append(([p.grad.clone() for p in model.parameters()], torch.stack(logits)))
            assert max(chunks) == (3 if split else 1)
    finally:
        torch.set_num_threads(threads)
    (g0, l0), (g1, l1) = runs
    for a, b in zip(g0, g1):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(l1, l0, rtol=0, atol=0)
