"""oneDNN linears (`r1lab.engines.cpu.linear`) and the one switch and entry point
(`r1lab.engines.cpu`)."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import Qwen2Config, Qwen2ForCausalLM

from r1lab.engines import cpu
from r1lab.engines.cpu import linear as cpu_kernels
from r1lab.engines.cpu.kv_decode import supports_kv_decode

needs_onednn = pytest.mark.skipif(
    cpu_kernels._op() is None or not torch.backends.mkldnn.is_available(),
    reason="this PyTorch build has no oneDNN (torch.ops.mkldnn._linear_pointwise)",
)


@pytest.fixture
def mode(monkeypatch):
    """Set R1LAB_CPU for one test; the process-wide decision is recomputed around it."""

    def set_mode(value: str) -> None:
        monkeypatch.setenv(cpu.ENV, value)
        cpu_kernels.use_onednn.cache_clear()

    yield set_mode
    cpu_kernels.use_onednn.cache_clear()


def _tiny_qwen2(seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=50,
        hidden_size=32,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    return Qwen2ForCausalLM(cfg).eval()


def _grads(x, w, b, fn, grad_out):
    x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
    b = None if b is None else b.clone().requires_grad_()
    y = fn(x, w, b)
    y.backward(grad_out)
    return y.detach(), x.grad, w.grad, None if b is None else b.grad


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("K", "N"), [(24, 40), (40, 24)])  # both dW formulations
def test_onednn_linear_matches_f_linear_values_and_grads(bias, K, N):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 7, K, generator=g)
    w = torch.randn(N, K, generator=g)
    b = torch.randn(N, generator=g) if bias else None
    grad_out = torch.randn(3, 7, N, generator=g)
    ours = _grads(x, w, b, cpu_kernels.onednn_linear, grad_out)
    ref = _grads(x, w, b, F.linear, grad_out)
    assert ours[0].shape == (3, 7, N)
    for a, r in zip(ours, ref):
        if r is None:
            assert a is None
        else:
            torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_onednn_linear_non_contiguous_input_and_expanded_grad():
    g = torch.Generator().manual_seed(1)
    base = torch.randn(16, 9, generator=g)
    x = base.t()[:, :12]  # (9, 12), not contiguous
    w = torch.randn(5, 12, generator=g)
    xs = x.clone().requires_grad_()
    ws = w.clone().requires_grad_()
    cpu_kernels.onednn_linear(xs, ws).sum().backward()  # grad_out is an expanded (stride 0) tensor
    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
    F.linear(xr, wr).sum().backward()
    torch.testing.assert_close(xs.grad, xr.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ws.grad, wr.grad, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_ineligible_inputs_take_f_linear_exactly():
    x = torch.randn(4, 6, dtype=torch.float64)
    w = torch.randn(3, 6, dtype=torch.float64)
    assert torch.equal(cpu_kernels.onednn_linear(x, w), F.linear(x, w))
    empty = cpu_kernels.onednn_linear(torch.zeros(0, 6), torch.randn(3, 6))
    assert empty.shape == (0, 3)


@needs_onednn
def test_enable_swaps_linears_keeps_weights_logits_and_kv_decode(mode, tmp_path):
    mode("on")
    model = _tiny_qwen2()
    ids = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        before = model(ids).logits
    keys = list(model.state_dict())
    n_linear = sum(type(m) is nn.Linear for m in model.modules())
    assert cpu_kernels.enable(model) == n_linear > 0
    assert cpu_kernels.enable(model) == 0  # idempotent
    assert all(type(m) is not nn.Linear for m in model.modules())
    assert isinstance(model.lm_head, nn.Linear)
    assert model.lm_head.weight is model.model.embed_tokens.weight  # tying kept
    assert list(model.state_dict()) == keys
    assert supports_kv_decode(model)
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, before, rtol=1e-5, atol=1e-5)
    clone = copy.deepcopy(model)
    assert type(clone.lm_head) is cpu_kernels.OneDNNLinear
    assert type(pickle.loads(pickle.dumps(model.lm_head))) is cpu_kernels.OneDNNLinear
    model.save_pretrained(tmp_path)
    again = Qwen2ForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, before, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_training_step_with_onednn_matches_default_kernel(mode):
    """One AdamW step on the same batch: loss, every gradient and the new weights agree."""
    mode("on")
    ids = torch.randint(0, 50, (3, 12))
    results = []
    for swap in (False, True):
        model = _tiny_qwen2(seed=3).train()
        if swap:
            assert cpu_kernels.enable(model) > 0
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        opt.step()
        results.append(
            (loss.item(), grads, {n: p.detach().clone() for n, p in model.named_parameters()})
        )
    (l0, g0, p0), (l1, g1, p1) = results
    assert l1 == pytest.approx(l0, rel=1e-5)
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=1e-4, atol=1e-6, msg=name)
        # AdamW's first step moves each weight by ~lr * g / (|g| + 1e-8): where |g| is near
        # eps (k_proj's bias has a zero gradient in exact arithmetic), 1e-10 of rounding in g
        # moves the weight by up to ~1e-5; elsewhere the new weights agree tightly
        stable = g0[name].abs() > 1e-6
        torch.testing.assert_close(p1[name][stable], p0[name][stable], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(p1[name], p0[name], rtol=0, atol=1e-4, msg=name)


def test_off_keeps_plain_linears(mode):
    mode("off")
    model = _tiny_qwen2()
    assert cpu_kernels.enable(model) == 0
    assert all(type(m) is nn.Linear for m in model.modules() if isinstance(m, nn.Linear))
    x = torch.randn(2, 32)
    assert torch.equal(
        cpu_kernels.linear(x, model.lm_head.weight), F.linear(x, model.lm_head.weight)
    )


def test_unknown_mode_is_a_clear_error(mode):
    mode("fastest")
    with pytest.raises(ValueError, match="R1LAB_CPU='fastest'"):
        cpu_kernels.use_onednn()


@needs_onednn
def test_auto_mode_decides_from_a_measurement_and_logs_it(mode, caplog):
    mode("auto")
    with caplog.at_level(logging.INFO, logger="r1lab.engines.cpu.linear"):
        decision = cpu_kernels.use_onednn()
    assert "x F.linear on a 512x256x1024 matmul" in caplog.text
    assert ("CPU linear layers: oneDNN" in caplog.text) == decision


@needs_onednn
def test_auto_decides_once_per_machine_so_processes_agree(mode, monkeypatch, tmp_path):
    """A later process (cache cleared) keeps the first measurement's verdict even when its own
    timing would say otherwise: runs that decide under other load still round the same."""
    monkeypatch.setenv("R1LAB_CACHE", str(tmp_path))
    verdicts = iter([(True, "first"), (False, "second")])
    monkeypatch.setattr(cpu_kernels, "_measure", lambda: next(verdicts))
    mode("auto")
    assert cpu_kernels.use_onednn() is True
    mode("auto")  # a new decision, as in another process
    assert cpu_kernels.use_onednn() is True
    assert len(list((tmp_path / "kernels").glob("linear-*.json"))) == 1


@needs_onednn
def test_packed_weight_linear_matches_f_linear_for_any_row_count(mode):
    mode("on")
    g = torch.Generator().manual_seed(2)
    w, b = torch.randn(24, 16, generator=g), torch.randn(24, generator=g)
    packed = cpu_kernels.pack_weight(w, rows=8)
    assert packed.layout == torch._mkldnn
    for rows in (1, 8, 13):
        x = torch.randn(rows, 1, 16, generator=g)
        torch.testing.assert_close(
            cpu_kernels.linear(x, packed, b), F.linear(x, w, b), rtol=1e-5, atol=1e-5
        )


def test_pack_weight_keeps_trainable_or_unpackable_weights(mode):
    mode("off")
    w = torch.randn(4, 3)
    assert cpu_kernels.pack_weight(w, 8) is w  # oneDNN off
    trainable = torch.randn(4, 3, requires_grad=True)
    assert cpu_kernels.pack_weight(trainable, 8) is trainable
    assert cpu_kernels.pack_weight(w.double(), 8).dtype == torch.float64


def test_enable_applies_the_pieces_the_switch_allows(mode):
    """`cpu.enable`, the engines' one entry point: ``on`` swaps the linears, ``off`` leaves the
    model alone."""
    for value, swapped in (("off", False), ("on", True)):
        mode(value)
        model = _tiny_qwen2()
        cpu.enable(model)
        assert (type(model.lm_head) is cpu_kernels.OneDNNLinear) == swapped
