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


def test_document_packing_keeps_attention_inside_each_document(tiny_model, tiny_tokenizer):
    import torch

    from r1lab.pipelines.pretrain import packed_batches

    eos = tiny_tokenizer.eos_token_id
    docs = [tiny_tokenizer(d)["input_ids"] for d in ("Compute 1 + 2. 1 + 2 = 3.", "Compute 4 - 1")]
    stream = (docs[0] + [eos] + docs[1] + [eos]) * 20
    x, pos = next(packed_batches(stream, 24, 4, 0, eos_id=eos, packing="documents"))
    for row, p in zip(x.tolist(), pos.tolist()):
        assert row[0] in (docs[0][0], docs[1][0])  # every row opens at a document start
        assert p[0] == 0
        for t in range(1, len(row)):  # positions restart right after each end-of-text
            assert p[t] == (0 if row[t - 1] == eos else p[t - 1] + 1)
    # The packed forward pass the pretraining loop makes (position ids, no mask, no cache) gives
    # every document the logits it gets alone: transformers really masks across documents.
    a, b = torch.tensor([docs[0] + [eos]]), torch.tensor([docs[1]])
    packed = torch.cat([a, b], 1)
    p = torch.cat([torch.arange(a.shape[1]), torch.arange(b.shape[1])]).unsqueeze(0)
    tiny_model.eval()
    with torch.no_grad():
        joint = tiny_model(input_ids=packed, position_ids=p, use_cache=False).logits
        alone = tiny_model(input_ids=b).logits
    assert (joint[:, a.shape[1] :] - alone).abs().max() < 1e-4
    x, pos = next(packed_batches(stream, 24, 4, 0, packing="stream"))
    assert pos.tolist() == [list(range(24))] * 4
