"""The exact verifiers of the synthetic tasks: ``number`` (thousands rule) and ``countdown``."""

from __future__ import annotations

from fractions import Fraction

import pytest

from r1lab.rewards import VERIFIERS, Completion
from r1lab.rewards.synthetic import parse_number


@pytest.mark.parametrize(
    "text,value",
    [
        ("1,234", Fraction(1234)),
        ("-1,234,567.5", Fraction(-2469135, 2)),
        ("12", Fraction(12)),
        ("3.50", Fraction(7, 2)),
        ("7/2", Fraction(7, 2)),
        ("$1,000$", Fraction(1000)),
        ("1,2", None),  # not a thousands group: not 12
        ("12,34", None),
        ("1,2345", None),
        ("1234,567", None),
        (",123", None),
    ],
)
def test_thousands_separators_need_groups_of_three(text, value):
    assert parse_number(text) == value


def number(text: str, gold: str) -> float:
    return VERIFIERS.get("number")(Completion(text, {"answer": gold})).score


def test_number_verifier():
    assert number("<answer>1,234</answer>", "1234") == 1.0
    assert number("<answer>1,2</answer>", "12") == 0.0
    assert number("\\boxed{12}", "12") == 1.0


def countdown(text: str, numbers: list[int], target: int, **params) -> float:
    row = {"answer": str(target), "numbers": numbers}
    return VERIFIERS.get("countdown")(Completion(text, row), **params).score


def test_countdown_uses_each_number_exactly_once():
    assert countdown("<answer>(25-5)*4</answer>", [25, 5, 4], 80) == 1.0
    assert countdown("<answer>25*4</answer>", [25, 5, 4, 20], 100) == 0.0  # 5, 20 unused
    assert countdown("<answer>25*4</answer>", [25, 5, 4, 20], 100, allow_unused=True) == 1.0
    assert countdown("<answer>25*4*4</answer>", [25, 4], 400) == 0.0  # 4 used twice
    assert countdown("<answer>25*4+7</answer>", [25, 4], 107) == 0.0  # 7 not given


@pytest.mark.parametrize(
    "benchmark,text,gold",
    [
        ("gsm8k", "She makes 9 * 2 = $18 every day.\n#### 18", "18"),
        ("aime2024", "Summing the cases gives 1,024 in all. The answer is 1,024.", "1024"),
        ("math500", "So the final answer is $\\frac{3}{4}$.", "0.75"),
    ],
)
def test_benchmarks_grade_unboxed_answers_with_the_default_policy(benchmark, text, gold):
    from r1lab.eval.benchmarks import BENCHMARKS

    spec = BENCHMARKS.get(benchmark)
    row = {"answer": gold, "verifier": spec.verifier}
    result = VERIFIERS.get(spec.verifier)(Completion(text, row), extractor=spec.extractor)
    assert result.score == 1.0, result
