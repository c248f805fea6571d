"""load_causal_lm / resolve_model_path on a tiny random Qwen2 saved by plain transformers."""

from __future__ import annotations

from pathlib import Path

import pytest

from r1lab.errors import ConfigError, R1LabError
from r1lab.models import hf_load
from r1lab.models.hf_load import MODEL_RESOLVERS, load_causal_lm, resolve_model_path


def _bpe_tokenizer(**special):
    """A small byte-level BPE as a PreTrainedTokenizerFast with the given special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(["the cat sat on the mat", "two plus two is four"] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, **special)


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory) -> Path:
    """A random 2-layer Qwen2 + a BPE tokenizer with an EOS but no pad token, saved to disk."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = _bpe_tokenizer(eos_token="<eos>")
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    out = tmp_path_factory.mktemp("qwen")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_loads_local_dir_ready_for_generation(qwen_dir, caplog):
    import torch
    from transformers import AutoModelForCausalLM

    model, tok = load_causal_lm(str(qwen_dir))
    assert not model.training
    # transformers loads this as a Qwen2Tokenizer, which invents an out-of-vocabulary pad token
    assert "outside the model's vocabulary" in caplog.text
    assert tok.pad_token == "<eos>" and tok.pad_token_id == tok.eos_token_id
    assert tok.padding_side == "left"
    assert model.generation_config.pad_token_id == tok.eos_token_id
    assert next(model.parameters()).dtype == torch.float32

    batch = tok(["the cat", "two plus two is"], return_tensors="pt", padding=True)
    assert batch.input_ids[0, 0].item() == tok.pad_token_id  # shorter row padded on the left
    plain = AutoModelForCausalLM.from_pretrained(qwen_dir).eval()
    ids = batch.input_ids[1:]
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, plain(ids).logits, atol=1e-6, rtol=0)


def test_missing_pad_token_becomes_eos():
    tok = _bpe_tokenizer(eos_token="<eos>")
    assert tok.pad_token is None
    hf_load._prepare_tokenizer(tok, len(tok), "test")
    assert tok.pad_token == "<eos>" and tok.padding_side == "left"

    with pytest.raises(R1LabError, match="neither a pad nor an EOS"):
        hf_load._prepare_tokenizer(_bpe_tokenizer(), 300, "test")


def test_dtype_option(qwen_dir):
    import torch

    model, _ = load_causal_lm(str(qwen_dir), dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
    with pytest.raises(ConfigError, match="known: float32, bfloat16"):
        load_causal_lm(str(qwen_dir), dtype="fp8")


def test_bad_device_is_a_config_error(qwen_dir):
    with pytest.raises(ConfigError, match="device"):
        load_causal_lm(str(qwen_dir), device="not-a-device")


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(R1LabError, match="does not exist"):
        load_causal_lm(str(tmp_path / "no" / "such" / "model"))
    with pytest.raises(R1LabError, match="does not exist"):
        load_causal_lm("./checkpoints/nothing-here")


def test_dir_without_config_is_a_clear_error(tmp_path):
    with pytest.raises(R1LabError, match="no config.json"):
        load_causal_lm(str(tmp_path))


def test_hub_id_offline_fails_in_one_line(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(R1LabError, match="hub id failed") as info:
        load_causal_lm("r1lab-test-org/no-such-model")
    assert "\n" not in str(info.value)


def test_resolve_passes_paths_and_ids_through(tmp_path):
    assert resolve_model_path("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    assert resolve_model_path("unknownprefix:x") == "unknownprefix:x"


def test_fetch_spec_goes_through_fetch_model(monkeypatch, tmp_path):
    from r1lab.models import fetch

    asked = []
    monkeypatch.setattr(fetch, "fetch_model", lambda name: asked.append(name) or tmp_path / name)
    assert resolve_model_path("fetch:smollm2") == str(tmp_path / "smollm2")
    assert asked == ["smollm2"]


def test_registered_prefix_resolves_and_loads(monkeypatch, qwen_dir):
    # monkeypatch.setitem removes the entry afterwards, so the global registry stays clean
    monkeypatch.setitem(MODEL_RESOLVERS._items, "testqwen", lambda rest: str(qwen_dir))
    assert resolve_model_path("testqwen:anything") == str(qwen_dir)
    model, _ = load_causal_lm("testqwen:anything")
    assert model.config.model_type == "qwen2"


def test_unknown_prefix_lists_known_ones():
    with pytest.raises(R1LabError, match=r"unknown model spec prefix 'nope'.*fetch"):
        load_causal_lm("nope:thing")


def test_resolver_modules_are_importable():
    hf_load._load_resolver_modules()
