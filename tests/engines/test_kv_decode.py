"""The lean KV decoder (engines/cpu/kv_decode.py) against the model's own forward."""

import pytest
import torch

import r1lab.engines.hf as hf
from r1lab.engines.cpu.kv_decode import supports_kv_decode
from r1lab.engines.hf import HFGenerator, completion_logprobs
from r1lab.types import SamplingParams

PROMPTS = ["Compute 3 + 4", "Using the numbers 2, 5, make 10. Assistant:", "7*8="]


def llama_gqa(vocab: int):
    """A tiny Llama with grouped-query attention (4 heads, 2 K/V heads) and untied head."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(cfg).eval()


def both_paths(model, tok, monkeypatch, sp: SamplingParams):
    gen = HFGenerator(model, tok, batch_size=5)
    assert supports_kv_decode(model)
    kv = gen.generate(PROMPTS, 3, sp)
    with monkeypatch.context() as m:
        m.setattr(hf, "supports_kv_decode", lambda model: False)
        plain = gen.generate(PROMPTS, 3, sp)
    return gen, kv, plain


@pytest.mark.parametrize("arch", ["qwen2", "llama_gqa"])
def test_kv_decoder_matches_the_model_forward(arch, tiny_model, tiny_tokenizer, monkeypatch):
    """Same seed -> same tokens and log-probs on both paths, and both equal a fresh forward."""
    model = tiny_model if arch == "qwen2" else llama_gqa(len(tiny_tokenizer))
    sp = SamplingParams(max_new_tokens=12, temperature=0.8, seed=3)
    gen, kv, plain = both_paths(model, tiny_tokenizer, monkeypatch, sp)
    assert [r.completion_ids for r in kv] == [r.completion_ids for r in plain]
    assert [r.finish_reason for r in kv] == [r.finish_reason for r in plain]
    with torch.no_grad():
        logp, _ = completion_logprobs(
            model,
            [r.prompt_ids for r in kv],
            [r.completion_ids for r in kv],
            pad_id=gen.pad_id,
            temperature=sp.temperature,
        )
    for b, (a, p) in enumerate(zip(kv, plain)):
        n = len(a.completion_ids)
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(p.logprobs), atol=1e-5)
        assert torch.allclose(torch.tensor(a.logprobs), logp[b, :n], atol=1e-4)


def test_shared_prompt_prefill_equals_separate_rows(tiny_model, tiny_tokenizer, monkeypatch):
    """n samples of one prompt share its prefill; the result equals listing the prompt n times
    (n = 1 each), where every row runs its own prefill."""
    gen = HFGenerator(tiny_model, tiny_tokenizer)
    sp = SamplingParams(max_new_tokens=10, seed=11)
    shared = gen.generate(PROMPTS, 4, sp)
    separate = gen.generate([p for p in PROMPTS for _ in range(4)], 1, sp)
    assert [r.completion_ids for r in shared] == [r.completion_ids for r in separate]
    for a, b in zip(shared, separate):
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5)


def test_only_exact_architectures_take_the_fast_path(tiny_model):
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    assert supports_kv_decode(tiny_model)
    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=50))
    assert not supports_kv_decode(gpt2)
    lora = get_peft_model(
        llama_gqa(50), LoraConfig(r=2, target_modules=["q_proj", "v_proj"], lora_alpha=4)
    )
    assert not supports_kv_decode(lora)
