"""Trace analytics: lengths, reflection words, language mixing; per step over a sample log."""

from __future__ import annotations

import pytest

from r1lab.errors import DataError
from r1lab.eval.analytics import (
    foreign_words,
    script_words,
    trace_stats,
    trace_stats_by_step,
)
from r1lab.utils.jsonl import JsonlWriter

TEXTS = [
    "Wait, let me check: 3 + 4 = 7. Wait again.",
    "We verify the sum. 12 - 5 = 7.",
    "Waiting is not reflection; verifying is not verify-ing either.",
    "The answer is 7.",
]


def test_reflection_phrases_whole_words_case_insensitive():
    s = trace_stats(TEXTS)
    assert s["reflect/wait"] == pytest.approx(1 / 4)
    assert s["reflect/wait/per_response"] == pytest.approx(2 / 4)
    assert s["reflect/let me check"] == pytest.approx(1 / 4)
    assert s["reflect/verify"] == pytest.approx(1 / 4)  # "verifying", "verify-ing" do not count
    assert s["reflect/any"] == pytest.approx(2 / 4)
    assert trace_stats(["LET  ME\nCHECK this"])["reflect/let me check"] == 1.0


def test_length_distribution():
    s = trace_stats(["a"] * 4, num_tokens=[10, 20, 30, 40])
    assert (s["len_mean"], s["len_max"]) == (25.0, 40.0)
    assert s["len_p50"] == pytest.approx(25.0)
    assert s["len_p10"] == pytest.approx(13.0)  # 10 + 0.3 * 10
    assert trace_stats(["one two", "one two three four"])["len_mean"] == 3.0
    with pytest.raises(DataError):
        trace_stats(["a"], num_tokens=[1, 2])
    with pytest.raises(DataError):
        trace_stats([])


def test_language_mixing_by_script():
    assert script_words("The sum is 7") == {"latin": 3}
    assert script_words("我们计算 the sum") == {"han": 4, "latin": 2}
    assert script_words("Пусть x = 3") == {"cyrillic": 1, "latin": 1}
    assert foreign_words("Let α + β = π, so x = 2") == (0, 3)  # Greek is math, not a language
    assert foreign_words("First 我们 compute", target_script="latin") == (2, 4)
    texts = ["First we add, 然后 we subtract.", "All English here.", "完全是中文。"]
    s = trace_stats(texts)
    # the third is all Han: mixed only relative to a target language
    assert s["lang_mix_rate"] == pytest.approx(1 / 3)
    assert trace_stats(texts, target_script="latin")["lang_mix_rate"] == pytest.approx(2 / 3)
    assert s["foreign_word_share"] == pytest.approx((2 / 7) / 3)


def test_trace_stats_by_step(tmp_path):
    path = tmp_path / "samples.jsonl"
    with JsonlWriter(path, "w") as w:
        for step, text in [(1, "x = 1"), (0, "plain"), (1, "wait, x = 2"), (0, "wait")]:
            w.write({"step": step, "completion": text, "reward": 0.0})
    rows = trace_stats_by_step(path)
    assert [r["step"] for r in rows] == [0, 1]
    assert [r["reflect/wait"] for r in rows] == [0.5, 0.5]
    assert [r["num_responses"] for r in rows] == [2, 2]
    with pytest.raises(DataError, match="no rows"):
        trace_stats_by_step(path, text_key="nope")
