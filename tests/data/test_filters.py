"""Table tests for the R1 rejection-sampling filters (one table per filter)."""

from __future__ import annotations

import pytest

from r1lab.data.filters import (
    FILTERS,
    Candidate,
    FilterSpec,
    check_filters,
    first_failure,
)
from r1lab.data.readable import reasoning_and_summary
from r1lab.errors import ConfigError
from r1lab.registry import RegistryError


def cand(text: str, num_tokens: int = 0, truncated: bool = False) -> Candidate:
    reasoning, summary = reasoning_and_summary(text)
    return Candidate(text, reasoning, summary, num_tokens, truncated)


def verdict(name: str, c: Candidate, **params) -> bool:
    """True = kept."""
    return FILTERS.get(name)(c, **params) is None


@pytest.mark.parametrize(
    ("text", "params", "kept"),
    [
        ("<think>\nFirst, 3 + 4 = 7. Then 7 * 2 = 14.\n</think>\nThe answer is 14.", {}, True),
        ("<think>\n首先 3 + 4 = 7，然后 7 * 2 = 14。\n</think>\n14", {}, False),  # Chinese CoT
        ("<think>\nFirst 3 + 4 = 7, 然后 multiply by 2.\n</think>\n14", {}, False),  # mixed
        (
            "<think>\nFirst 3 + 4 = 7, 然后 multiply by two to get fourteen.\n</think>\n14",
            {"max_other_share": 0.3},
            True,
        ),  # 2 of 11 words are Han: under a 30% tolerance
        ("<think>\n首先 3 + 4 = 7。\n</think>\nThe answer is 7.", {"target": "zh"}, True),
        ("<think>\n首先 compute 3 + 4 = 7。\n</think>\n7", {"target": "zh"}, False),
        (
            "<think>\nLet $x = 3$ and `y = 4`, so x + y = 7.\n</think>\n7",
            {},
            True,
        ),  # math/code neutral
        ("<think>\nДва плюс два\n</think>\nfour", {}, False),  # Cyrillic in an English CoT
        ("<think>\n3 + 4 = 7.\n</think>\n答案是 7", {}, True),  # only the reasoning is checked
        ("<think>\n\n</think>\n7", {}, True),  # no words at all
    ],
)
def test_mixed_language(text, params, kept):
    assert verdict("mixed_language", cand(text), **params) is kept


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            "<think>\nFirst we add the two numbers.\nThen we check the result once more.\n</think>\n7",
            True,
        ),
        (
            "<think>\nThe answer is English. Der Rest ist auf Deutsch geschrieben und ganz lang.\n"
            "</think>\n7",
            False,
        ),
        (
            "<think>\nLet me add the numbers. Then I check the sum again carefully.\n</think>\n7",
            True,
        ),
    ],
)
def test_mixed_language_with_latin_detection(text, kept):
    assert verdict("mixed_language", cand(text), detect_latin=True, max_other_share=0.2) is kept


LONG = "word " * 320  # 1600 characters


@pytest.mark.parametrize(
    ("text", "params", "kept"),
    [
        ("<think>\nshort one.\n\nshort two.\n</think>\nx", {}, True),
        (f"<think>\n{LONG}\n</think>\nx", {}, False),  # > 1500 characters by default
        (f"<think>\nshort.\n\n{LONG}\n\nshort.\n</think>\nx", {}, False),
        (
            f"<think>\n{'word ' * 150}\n\n{'word ' * 150}\n</think>\nx",
            {},
            True,
        ),  # split by blank line
        ("<think>\na b c d e f\n</think>\nx", {"max_chars": 0, "max_words": 5}, False),
        ("<think>\na b c d e\n</think>\nx", {"max_chars": 0, "max_words": 5}, True),
        (f"<think>\nok\n</think>\n{LONG}", {}, True),  # the summary is not reasoning
        (f"no tags at all {LONG}", {}, False),  # no block: the whole text is the reasoning
    ],
)
def test_long_paragraph(text, params, kept):
    assert verdict("long_paragraph", cand(text), **params) is kept


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("<think>\nadd 3 and 4\n</think>\n7", True),
        ("<think>\n```python\nprint(3 + 4)\n```\n</think>\n7", False),
        ("<think>\nlet me run\n  ~~~\nx = 1\n  ~~~\n</think>\n7", False),
        ("<think>\ninline `x = 1` is fine\n</think>\n7", True),
        ("<think>\nthink\n</think>\n```python\nprint(7)\n```", True),  # code in the summary
    ],
)
def test_code_block(text, kept):
    assert verdict("code_block", cand(text)) is kept


@pytest.mark.parametrize(
    ("num_tokens", "text", "params", "kept"),
    [
        (50, "x" * 100, {}, True),
        (50, "x" * 100, {"max_tokens": 49}, False),
        (50, "x" * 100, {"max_tokens": 50}, True),
        (50, "x" * 100, {"min_tokens": 51}, False),
        (50, "x" * 100, {"max_chars": 99}, False),
        (50, "x" * 100, {"min_chars": 100}, True),
        (50, "x" * 100, {"min_chars": 101}, False),
    ],
)
def test_length(num_tokens, text, params, kept):
    assert verdict("length", cand(text, num_tokens), **params) is kept


@pytest.mark.parametrize(("truncated", "kept"), [(True, False), (False, True)])
def test_truncated(truncated, kept):
    assert verdict("truncated", cand("<think>a</think>b", truncated=truncated)) is kept


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("<think>\nreason\n</think>\nThe answer is \\boxed{7}.", True),
        ("<think>\nreason\n</think>\n", False),  # no summary
        ("reason only, The answer is 7.", False),
        ("<think>\nreason\n</think>\nsummary <think> again", False),
        ("<think> <answer> 7 </answer> </think> x", True),
    ],
)
def test_readable(text, kept):
    assert verdict("readable", cand(text)) is kept


def test_first_failure_order_and_spec_checks():
    spec = (FilterSpec("truncated"), FilterSpec("code_block"))
    c = cand("<think>\n```\nx\n```\n</think>\ny", truncated=True)
    assert first_failure(c, spec)[0] == "truncated"
    assert first_failure(c, spec[1:])[0] == "code_block"
    assert first_failure(cand("<think>a</think>b"), spec) is None
    with pytest.raises(RegistryError, match="known: .*code_block"):
        check_filters((FilterSpec("nope"),))
    with pytest.raises(ConfigError, match="twice"):
        check_filters((FilterSpec("length"), FilterSpec("length")))
