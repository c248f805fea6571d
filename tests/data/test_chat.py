"""Assistant-only loss masks on chat templates with and without generation markers."""

from __future__ import annotations

import copy

import pytest

from r1lab.data.chat import (
    LoadStats,
    assistant_spans,
    row_to_conversation,
    tokenize_conversation,
    tokenize_rows,
)
from r1lab.errors import DataError

CONV = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "Compute 2 + 3"},
    {"role": "assistant", "content": "2 + 3 = 5. The answer is 5."},
    {"role": "user", "content": "and 4 + 4?"},
    {"role": "assistant", "content": "8"},
]

# ChatML without {% generation %} markers (the Qwen2.5 layout)
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Llama-3-style headers without markers, and a default system prompt the template inserts
LLAMA3 = (
    "{% if messages[0]['role'] != 'system' %}<|start_header_id|>system<|end_header_id|>\n\n"
    "default<|eot_id|>{% endif %}"
    "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
# A template that drops the reasoning of earlier assistant turns (as Qwen3/R1 templates do)
REWRITING = (
    "{% for m in messages %}{% if m['role'] == 'assistant' and not loop.last %}"
    "<|im_start|>assistant\n{{ m['content'].split('</think>')[-1] }}<|im_end|>\n"
    "{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture()
def tok(tiny_tokenizer):
    t = copy.deepcopy(tiny_tokenizer)
    t.add_special_tokens(
        {
            "additional_special_tokens": [
                "<|im_start|>",
                "<|im_end|>",
                "<|start_header_id|>",
                "<|end_header_id|>",
                "<|eot_id|>",
            ]
        }
    )
    return t


def masked_text(tok, sample) -> str:
    return "".join(
        tok.decode([i]) if m else "|" for i, m in zip(sample.input_ids, sample.loss_mask)
    )


def target_segments(tok, sample) -> list[str]:
    """Decoded runs of consecutive target tokens."""
    runs, cur = [], []
    for i, m in zip(sample.input_ids, sample.loss_mask):
        if m:
            cur.append(i)
        elif cur:
            runs.append(tok.decode(cur))
            cur = []
    if cur:
        runs.append(tok.decode(cur))
    return runs


def test_tiny_template_matches_generation_markers(tiny_tokenizer):
    """Prefix diffing reproduces transformers' {% generation %} assistant mask exactly."""
    sample = tokenize_conversation(tiny_tokenizer, CONV)
    ref = tiny_tokenizer.apply_chat_template(
        CONV, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    assert sample.input_ids == list(ref["input_ids"])
    assert sample.loss_mask == list(ref["assistant_masks"])
    assert target_segments(tiny_tokenizer, sample) == [
        "2 + 3 = 5. The answer is 5.<|end|>",
        "8<|end|>",
    ]


def test_chatml_without_markers(tok):
    tok.chat_template = CHATML
    sample = tokenize_conversation(tok, CONV)
    assert target_segments(tok, sample) == [
        "2 + 3 = 5. The answer is 5.<|im_end|>\n",
        "8<|im_end|>\n",
    ]
    # nothing of the system / user turns or the assistant headers is a target
    text = tok.decode(sample.input_ids)
    assert text == tok.apply_chat_template(CONV, tokenize=False)
    assert sample.num_targets == len(
        tok("2 + 3 = 5. The answer is 5.<|im_end|>\n8<|im_end|>\n", add_special_tokens=False)[
            "input_ids"
        ]
    )


def test_llama3_style_without_markers_and_default_system(tok):
    tok.chat_template = LLAMA3
    conv = CONV[1:]  # no system message: the template inserts its default one
    sample = tokenize_conversation(tok, conv)
    assert target_segments(tok, sample) == ["2 + 3 = 5. The answer is 5.<|eot_id|>", "8<|eot_id|>"]
    assert tok.decode(sample.input_ids).startswith("<|start_header_id|>system")


def test_template_that_rewrites_history_is_reported(tok):
    tok.chat_template = REWRITING
    conv = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "<think>r1</think>a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
    ]
    with pytest.raises(DataError, match="rewrites earlier turns"):
        tokenize_conversation(tok, conv)
    # one assistant turn is fine
    sample = tokenize_conversation(tok, conv[:2])
    assert target_segments(tok, sample) == ["<think>r1</think>a1<|im_end|>\n"]


def test_raw_prompt_completion_targets_completion_and_eos(tiny_tokenizer):
    conv = row_to_conversation({"prompt": "User: 2+2. Assistant:", "completion": " 4"}, "r", "raw")
    sample = tokenize_conversation(tiny_tokenizer, conv)
    assert target_segments(tiny_tokenizer, sample) == [" 4<|endoftext|>"]


def test_prompt_completion_chat_rows_and_message_lists(tiny_tokenizer):
    a = row_to_conversation({"prompt": "hi", "completion": "yo"}, "r")
    b = row_to_conversation(
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
        "r",
    )
    c = row_to_conversation(
        {
            "prompt": [{"role": "user", "content": "hi"}],
            "completion": [{"role": "assistant", "content": "yo"}],
        },
        "r",
    )
    assert a == b == c
    assert assistant_spans(tiny_tokenizer, a)[1] == [
        (len("<|user|>hi<|end|><|assistant|>"), len("<|user|>hi<|end|><|assistant|>yo<|end|>"))
    ]


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"text": "x"}, "needs 'messages' or 'prompt'"),
        ({"messages": []}, "non-empty list"),
        ({"messages": [{"role": "user", "content": "q"}]}, "no assistant message"),
        ({"messages": [{"role": "bot", "content": "q"}]}, "role 'bot'"),
        ({"messages": [{"role": "user"}]}, "needs 'role' and 'content'"),
        ({"prompt": "p", "completion": ""}, "no assistant message|non-empty"),
        ("just a string", "expected a JSON object"),
    ],
)
def test_bad_rows_raise_data_error(row, match):
    fmt = "raw" if isinstance(row, dict) and row.get("completion") == "" else "chat"
    with pytest.raises(DataError, match=match):
        row_to_conversation(row, "f.jsonl:3", fmt)


def test_truncation_and_dropping_are_counted(tiny_tokenizer):
    rows = [
        ("a", {"prompt": "p" * 5, "completion": "c" * 40}),
        ("b", {"prompt": "p" * 60, "completion": "c"}),
    ]
    stats = LoadStats()
    out = tokenize_rows(rows, tiny_tokenizer, max_len=30, stats=stats)
    assert stats.rows == 2 and stats.truncated == 2 and stats.dropped_no_target == 1
    assert len(out) == 1 and len(out[0].input_ids) == 30 and out[0].loss_mask[0] == 0


def test_parquet_and_jsonl_sources_give_the_same_samples(tmp_path, tiny_tokenizer):
    import json

    from r1lab.data.chat import read_sft_rows

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")

    rows = [{"messages": CONV}, {"prompt": "hi", "completion": "yo"}]
    columns = [
        {
            "messages": r.get("messages"),
            "prompt": r.get("prompt"),
            "completion": r.get("completion"),
        }
        for r in rows
    ]  # a Parquet file has one schema
    pq.write_table(pa.Table.from_pylist(columns), tmp_path / "d.parquet")
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    a = tokenize_rows(read_sft_rows(tmp_path / "d.parquet"), tiny_tokenizer)
    b = tokenize_rows(read_sft_rows(tmp_path / "d.jsonl"), tiny_tokenizer)
    assert [(s.input_ids, s.loss_mask) for s in a] == [(s.input_ids, s.loss_mask) for s in b]
    assert len(a) == 2
