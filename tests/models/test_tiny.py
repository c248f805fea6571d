from transformers import AutoModelForCausalLM, AutoTokenizer

from r1lab.data.corpus import build_corpus
from r1lab.models.tiny import CHAT_TEMPLATE, SIZES, build_model, chat_text, num_parameters


def test_named_sizes_have_the_advertised_parameter_counts(tiny_tokenizer):
    counts = {s: num_parameters(build_model(s, tiny_tokenizer)) for s in ("1m", "5m")}
    assert 0.8e6 < counts["1m"] < 1.5e6
    assert 4e6 < counts["5m"] < 6e6
    assert set(SIZES) >= {"1m", "5m"}


def test_save_and_reload_with_plain_transformers(tmp_path, tiny_model, tiny_tokenizer):
    tiny_model.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    tok = AutoTokenizer.from_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    docs = build_corpus(200, tasks=("arith", "countdown"), difficulty=2, seed=5, chat_fmt=chat_text)
    for d in docs:  # the reloaded tokenizer encodes exactly like the one we trained
        assert tok(d)["input_ids"] == tiny_tokenizer(d)["input_ids"]
        assert tok.decode(tok(d)["input_ids"]) == d
    assert tok.chat_template == CHAT_TEMPLATE
    assert tok.pad_token == "<|pad|>" and tok.eos_token == "<|endoftext|>"
    assert model.config.model_type == "qwen2"
    x = tiny_tokenizer("Compute 1 + 2", return_tensors="pt")["input_ids"]
    assert (model(x).logits - tiny_model(x).logits).abs().max() < 1e-6


def test_chat_template_matches_chat_text_and_digits_are_single_tokens(tiny_tokenizer):
    msgs = [{"role": "user", "content": "Compute 12 + 7"}, {"role": "assistant", "content": "19"}]
    assert tiny_tokenizer.apply_chat_template(msgs, tokenize=False) == chat_text(
        "Compute 12 + 7", "19"
    )
    prompt = tiny_tokenizer.apply_chat_template(
        msgs[:1], tokenize=False, add_generation_prompt=True
    )
    assert prompt == chat_text("Compute 12 + 7")
    toks = tiny_tokenizer.convert_ids_to_tokens(tiny_tokenizer("4096")["input_ids"])
    assert toks == ["4", "0", "9", "6"]
