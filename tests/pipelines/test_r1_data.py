"""Readable format, cold-start builders and the general-chat mix of the R1 pipeline."""

from __future__ import annotations

import json
import random

import pytest

from r1lab.data.filters import FilterSpec
from r1lab.data.general_chat import general_examples, general_sft_rows, mix_rows, verify_general
from r1lab.data.readable import (
    ReadableFormat,
    cold_start_from_r1_zero,
    cold_start_from_seed,
    long_cot,
    reformat_r1_zero,
    render_readable,
    split_readable,
    write_synthetic_seed,
)
from r1lab.data.tasks import generate_mix
from r1lab.errors import ConfigError, DataError
from r1lab.rewards import REWARDS
from r1lab.rewards.base import Completion
from r1lab.rewards.synthetic import verify_countdown, verify_number


def test_render_and_split_roundtrip_and_rewards_agree():
    text = render_readable("3 + 4 = 7.\nCheck: 7 - 4 = 3.", "The answer is \\boxed{7}.")
    assert text == "<think>\n3 + 4 = 7.\nCheck: 7 - 4 = 3.\n</think>\nThe answer is \\boxed{7}."
    assert split_readable(text) == ("3 + 4 = 7.\nCheck: 7 - 4 = 3.", "The answer is \\boxed{7}.")
    row = {"answer": "7", "verifier": "number"}
    assert REWARDS.get("format_r1")(Completion(text, row)).score == 1.0
    assert verify_number(Completion(text, row)).score == 1.0
    special = ReadableFormat(open_tag="<|begin_of_thought|>", close_tag="<|end_of_thought|>")
    text2 = render_readable("r", "s", special)
    assert text2 == "<|begin_of_thought|>\nr\n<|end_of_thought|>\ns"
    assert split_readable(text2, special) == ("r", "s") and split_readable(text2) is None
    with pytest.raises(DataError):
        render_readable("  ", "s")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            " <think> 3 + 4 = 7. 7 * 2 = 14. </think> <answer> 14 </answer>",
            "<think>\n3 + 4 = 7.\n7 * 2 = 14.\n</think>\nThe answer is \\boxed{14}.",
        ),
        (
            "<think>x</think><answer>(3 + 4) * 2</answer>",
            "<think>\nx\n</think>\nThe answer is \\boxed{(3 + 4) * 2}.",
        ),
        ("<think> a </think> <answer> 1 </answer> trailing", None),
        ("3 + 4 = 7. The answer is 7.", None),
        ("<think> a <answer> 1 </answer> </think>", None),
    ],
)
def test_reformat_r1_zero(text, expected):
    assert reformat_r1_zero(text) == expected


def test_cold_start_from_r1_zero_filters_and_counts():
    rows = [
        {
            "id": "a",
            "question": "Compute 3 + 4",
            "answer": "7",
            "completion": " <think> 3 + 4 = 7. </think> <answer> 7 </answer>",
        },
        {
            "id": "b",
            "question": "Compute 1 + 1",
            "answer": "2",
            "completion": "1 + 1 = 2. The answer is 2.",
        },  # not R1-Zero format
        {
            "id": "c",
            "question": "Compute 5 + 5",
            "answer": "10",
            "completion": "<think> ```\nprint(5 + 5)\n``` </think> <answer> 10 </answer>",
        },
        {
            "id": "d",
            "question": "Compute 2 + 2",
            "answer": "4",
            "completion": "<think> 2 + 2 = 4, 然后 done. </think> <answer> 4 </answer>",
        },
    ]
    spec = (FilterSpec("code_block"), FilterSpec("mixed_language"))
    out, dropped = cold_start_from_r1_zero(rows, spec)
    assert [r["id"] for r in out] == ["a"]
    assert dropped == {"not_r1_zero_format": 1, "code_block": 1, "mixed_language": 1}
    assert out[0]["messages"] == [
        {"role": "user", "content": "Compute 3 + 4"},
        {
            "role": "assistant",
            "content": "<think>\n3 + 4 = 7.\n</think>\nThe answer is \\boxed{7}.",
        },
    ]
    assert out[0]["source"] == "r1_zero"


def test_synthetic_seed_file_is_correct_and_readable(tmp_path):
    examples = generate_mix(("arith", "countdown"), 20, split="train", difficulty=2)
    path = write_synthetic_seed(examples, tmp_path / "seed.jsonl", seed=0)
    rows = cold_start_from_seed(path)
    assert len(rows) == 20
    for ex, row in zip(examples, rows):
        response = row["messages"][1]["content"]
        reasoning, summary = split_readable(response)
        assert "\nCheck: " in reasoning
        for step in ex.meta["steps"]:
            assert step in reasoning
        checker = verify_countdown if ex.task == "countdown" else verify_number
        assert checker(Completion(response, ex.as_row())).score == 1.0, response
    assert path.read_text() == write_synthetic_seed(examples, tmp_path / "b.jsonl", 0).read_text()


@pytest.mark.parametrize("task", ["arith", "countdown"])
def test_long_cot_verifies_every_step(task):
    for ex in generate_mix((task,), 10, split="train", difficulty=2):
        text = long_cot(ex, random.Random(0))
        check = next(line for line in text.splitlines() if line.startswith("Check: "))
        equations = check.removeprefix("Check: ").removesuffix(". Right.").split(", ")
        assert len(equations) == len(ex.meta["steps"])
        for eq in equations:  # every check is true arithmetic
            lhs, rhs = eq.split(" = ")
            assert eval(lhs) == int(rhs), eq  # noqa: S307 - our own digits and + - *


def test_seed_file_errors(tmp_path):
    path = tmp_path / "seed.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "1"}) + "\n")
    with pytest.raises(DataError, match="missing \\['reasoning'\\]"):
        cold_start_from_seed(path)
    path.write_text(
        json.dumps({"question": "q", "reasoning": "r", "answer": "1", "summary": "So 1."}) + "\n"
    )
    assert cold_start_from_seed(path)[0]["messages"][1]["content"] == "<think>\nr\n</think>\nSo 1."


def test_general_chat_set_mix_and_verifier():
    a, b = general_examples(30, seed=1), general_examples(30, seed=1)
    assert a == b and len({ex.meta["kind"] for ex in a}) == 6
    rows = general_sft_rows(12)
    assert all(r["messages"][1]["content"] == r["answer"] for r in rows)
    reasoning = [{"id": f"r{i}"} for i in range(30)]
    mixed, info = mix_rows(reasoning, rows, ratio=0.25, seed=0)
    assert info == {
        "reasoning_rows": 30,
        "general_rows": 10,
        "general_wanted": 10,
        "general_ratio": 0.25,
    }
    assert sorted(r["id"] for r in mixed if r["id"].startswith("r")) == sorted(
        f"r{i}" for i in range(30)
    )
    short, info = mix_rows(reasoning, rows[:4], ratio=0.5, seed=0)
    assert info["general_rows"] == 4 and info["general_wanted"] == 30 and len(short) == 34
    with pytest.raises(ConfigError):
        mix_rows(reasoning, rows, ratio=1.0)
    row = {"answer": "The capital of Peru is Lima."}
    for text, score in [
        ("The capital of Peru is Lima.", 1.0),
        ("the capital of peru is lima", 1.0),
        ("<think>\nPeru... Lima.\n</think>\nThe capital of Peru is Lima!", 1.0),
        ("The capital of Peru is Quito.", 0.0),
        ("", 0.0),
    ]:
        assert verify_general(Completion(text, row)).score == score, text
