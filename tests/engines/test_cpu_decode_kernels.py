"""The C decode kernels (engines/cpu/kernels.py) against PyTorch, and the fused decode step."""

import logging

import pytest
import torch
import torch.nn.functional as F
from test_kv_decode import PROMPTS, llama_gqa  # same directory (pytest prepend import mode)

from r1lab.engines import cpu
from r1lab.engines.cpu import kernels as c_kernels
from r1lab.engines.cpu.kv_decode import KVDecoder
from r1lab.engines.hf import HFGenerator, sample_tokens
from r1lab.types import SamplingParams


@pytest.fixture(scope="module")
def ck():
    kernels = c_kernels.load()
    assert kernels is not None, "the decode kernels did not build (is a C compiler installed?)"
    return kernels


def rope_ref(x, cos, sin):
    half = x.size(-1) // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), -1) * sin


def test_add_rmsnorm_matches_torch(ck):
    torch.manual_seed(0)
    x, delta, w = torch.randn(5, 48), torch.randn(5, 48), torch.randn(48)
    y = torch.empty(5, 48)
    x_in = x.clone()
    ck.add_rmsnorm(x_in, delta, w, 1e-6, y)
    s = x + delta
    assert torch.equal(x_in, s)  # the residual sum is written back
    ref = w * (s * torch.rsqrt(s.pow(2).mean(-1, keepdim=True) + 1e-6))
    torch.testing.assert_close(y, ref, rtol=1e-6, atol=1e-6)
    x_in = x.clone()
    ck.add_rmsnorm(x_in, None, w, 1e-5, y)  # no residual
    assert torch.equal(x_in, x)
    torch.testing.assert_close(y, F.rms_norm(x, (48,), w, 1e-5), rtol=1e-6, atol=1e-6)


def test_rope_store_writes_rotated_q_k_and_v_at_the_slot(ck):
    torch.manual_seed(1)
    B, nh, nkv, hd, S, Sp, slot = 3, 4, 2, 8, 11, 16, 7
    qkv = torch.randn(B, (nh + 2 * nkv) * hd)
    angles = torch.randn(B, S, hd // 2).repeat(1, 1, 2)
    cos, sin = angles.cos(), angles.sin()
    q = torch.empty(B, nh, hd)
    kt, v = torch.zeros(B, nkv, hd, Sp), torch.zeros(B, nkv, S, hd)
    ck.rope_store(qkv, cos, sin, slot, q, kt, v)
    heads = qkv.view(B, nh + 2 * nkv, hd)
    c, s = cos[:, slot, None], sin[:, slot, None]
    assert torch.equal(q, rope_ref(heads[:, :nh], c, s))  # same rounding as PyTorch's ops
    assert torch.equal(kt[..., slot], rope_ref(heads[:, nh : nh + nkv], c, s))
    assert torch.equal(v[:, :, slot], heads[:, nh + nkv :])
    others = [i for i in range(Sp) if i != slot]
    assert (
        kt[..., others].abs().sum() == 0
        and v[:, :, [i for i in range(S) if i != slot]].abs().sum() == 0
    )


@pytest.mark.parametrize("nkv", [4, 2, 1])
@pytest.mark.parametrize("hd", [32, 24])
def test_attn_decode_matches_masked_softmax_attention(ck, nkv, hd):
    torch.manual_seed(2)
    B, nh, S = 4, 4, 37
    Sp = (S + 15) // 16 * 16
    k, v = torch.randn(B, nkv, S, hd), torch.randn(B, nkv, S, hd)
    q = torch.randn(B, nh, hd)
    kt = torch.zeros(B, nkv, hd, Sp)
    kt[..., :S] = k.transpose(-1, -2)
    ok = torch.ones(B, S, dtype=torch.bool)
    ok[1, :5] = False  # left padding
    ok[2, 3] = False
    scale = hd**-0.5
    for end in (1, 6, 16, 17, S):
        out = torch.full((B, nh * hd), float("nan"))
        ck.attn_decode(q, kt, v, ok, end, scale, out, torch.empty(Sp))
        kk = k[:, :, :end].repeat_interleave(nh // nkv, 1)
        vv = v[:, :, :end].repeat_interleave(nh // nkv, 1)
        scores = (q.unsqueeze(2) @ kk.transpose(-1, -2)) * scale
        scores = scores.masked_fill(~ok[:, None, None, :end], float("-inf"))
        ref = (scores.softmax(-1) @ vv).reshape(B, nh * hd)
        fully_masked = ~ok[:, :end].any(-1)  # row 1 for end <= 5: zeros, not NaN
        ref[fully_masked] = 0.0
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_silu_mul_matches_torch_including_large_inputs(ck):
    torch.manual_seed(3)
    gu = torch.randn(6, 2 * 40) * 30  # 40: a vector body and a scalar tail
    gu[0, :4] = torch.tensor([-200.0, 200.0, 0.0, -0.0])
    out = torch.empty(6, 40)
    ck.silu_mul(gu, out)
    ref = F.silu(gu[:, :40]) * gu[:, 40:]
    torch.testing.assert_close(out, ref, rtol=2e-6, atol=1e-5)
    assert torch.isfinite(out).all()


def fused_and_torch_logits(model, monkeypatch, steps: int = 6):
    """Logits of the fused step and of the PyTorch step, fed the same tokens, left-padded rows."""
    torch.manual_seed(4)
    with torch.no_grad():  # distinct norm weights, so that a norm taken for another shows
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    V = model.config.vocab_size
    attn = torch.ones(5, 7, dtype=torch.long)
    attn[1, :3] = 0
    attn[3, :6] = 0
    ids = torch.randint(3, V, (5, 7)) * attn
    feed = torch.randint(3, V, (steps, 5, 1))
    out = {}
    for mode in ("on", "off"):
        monkeypatch.setenv(cpu.ENV, mode)
        dec = KVDecoder(model, attn, steps)
        assert (dec.ck is not None) == (mode == "on")
        rows = [dec.prefill(ids)]
        rows += [dec.step(feed[t], 7 + t) for t in range(steps)]
        out[mode] = torch.stack(rows)
    return out["on"], out["off"]


@pytest.mark.parametrize("arch", ["qwen2", "llama_gqa"])
def test_fused_decode_step_equals_the_pytorch_step(arch, tiny_model, tiny_tokenizer, monkeypatch):
    model = tiny_model if arch == "qwen2" else llama_gqa(len(tiny_tokenizer))
    fused, plain = fused_and_torch_logits(model, monkeypatch)
    assert torch.equal(fused[0], plain[0])  # the prefill is the same code
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=2e-5)


def test_generation_uses_the_fused_step_and_samples_as_the_pytorch_step(
    tiny_model, tiny_tokenizer, monkeypatch
):
    calls = []
    real = KVDecoder._fused_step
    monkeypatch.setattr(KVDecoder, "_fused_step", lambda s, *a: calls.append(1) or real(s, *a))
    gen = HFGenerator(tiny_model, tiny_tokenizer, batch_size=4)
    sp = SamplingParams(max_new_tokens=10, temperature=0.9, seed=5)
    monkeypatch.setenv(cpu.ENV, "on")
    fused = gen.generate(PROMPTS, 3, sp)
    assert calls, "the fused step did not run"
    monkeypatch.setenv(cpu.ENV, "off")
    n = len(calls)
    plain = gen.generate(PROMPTS, 3, sp)
    assert len(calls) == n
    assert [r.completion_ids for r in fused] == [r.completion_ids for r in plain]
    for a, b in zip(fused, plain):
        torch.testing.assert_close(
            torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5, rtol=0
        )


def test_modes_and_build_failures(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv(cpu.ENV, "fastest")
    with pytest.raises(ValueError, match="R1LAB_CPU='fastest'"):
        cpu.mode()
    monkeypatch.setenv("R1LAB_CACHE", str(tmp_path))  # nothing built there yet
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    c_kernels.load.cache_clear()
    try:
        monkeypatch.setenv(cpu.ENV, "off")
        assert c_kernels.load() is None
        c_kernels.load.cache_clear()
        monkeypatch.setenv(cpu.ENV, "auto")
        with caplog.at_level(logging.WARNING, logger=c_kernels.__name__):
            assert c_kernels.load() is None
        assert "using PyTorch ops instead" in caplog.text
        c_kernels.load.cache_clear()
        monkeypatch.setenv(cpu.ENV, "on")
        with pytest.raises(c_kernels.KernelBuildError, match="no-such-compiler"):
            c_kernels.load()
    finally:
        c_kernels.load.cache_clear()


def test_broken_source_is_a_build_error_with_the_compiler_message(monkeypatch, tmp_path):
    bad = tmp_path / "decode.c"
    bad.write_text("this is not C;\n")
    monkeypatch.setattr(c_kernels, "SOURCES", (bad,))
    with pytest.raises(c_kernels.KernelBuildError, match="error"):
        c_kernels.build(tmp_path / "kernels")
    assert not list((tmp_path / "kernels").glob("*.so"))  # no half-written library left


def test_inverse_cdf_sampling_draws_from_the_distribution():
    gen = torch.Generator().manual_seed(0)
    p = torch.tensor([0.5, 0.0, 0.2, 0.3, 0.0])
    logp = p.log().expand(20000, 5)
    draws = sample_tokens(logp, gen).squeeze(-1)
    counts = torch.bincount(draws, minlength=5).float() / draws.numel()
    assert counts[1] == 0 and counts[4] == 0  # zero-probability tokens, also the last one
    torch.testing.assert_close(counts, p, atol=0.015, rtol=0)
    again = sample_tokens(logp, torch.Generator().manual_seed(0)).squeeze(-1)
    assert torch.equal(draws, again)  # seeded
    with pytest.raises(ValueError, match="NaN or inf"):
        sample_tokens(torch.full((2, 5), float("nan")), gen)


def test_threads_split_large_decode_calls_bit_for_bit(monkeypatch):
    """With several torch threads, large decode calls run in row chunks on several threads
    (`kernels._split`): forcing the split gives the single-chunk logits bit for bit."""
    chunks = []
    real_split = c_kernels._split

    def counting(n, work, call):
        chunks.append(max(1, min(torch.get_num_threads(), n, work // c_kernels.PARALLEL_MIN)))
        real_split(n, work, call)

    monkeypatch.setattr(c_kernels, "_split", counting)
    monkeypatch.setenv(cpu.ENV, "on")
    model = llama_gqa(50).eval()
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
            dec = KVDecoder(model, attn, 3)
            logits = [dec.prefill(ids)] + [dec.step(ids[:, t : t + 1], 9 + t) for t in range(3)]
            runs.append(torch.stack(logits))
            assert max(chunks) == (3 if split else 1)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(runs[1], runs[0], rtol=0, atol=0)
