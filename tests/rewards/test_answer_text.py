"""The rewrites applied before math-verify reads a whole text (`rewards.answer_text`)."""

from __future__ import annotations

import pytest

from r1lab.rewards.answer_text import prepare_text


@pytest.mark.parametrize(
    "text,expected",
    [
        ("$\\frac{1}{3}.$", "$\\frac{1}{3}$"),
        ("$\\frac{1}{3} ,$", "$\\frac{1}{3}$"),
        ("\\[x = 2.\\]", "\\[x = 2\\]"),
        ("$1, 2, 3, ...$", "$1, 2, 3, ...$"),  # an ellipsis is not punctuation
        ("4 4/9", "(4+4/9)"),
        ("-4 4/9", "-(4+4/9)"),
        ("+11 5/6 cups", "(11+5/6) cups"),
        ("4 4/9%", "(4+4/9)/100"),
        ("1 000 4/9", "(1000+4/9)"),
        ("The answer is 4 4/9.", "The answer is (4+4/9)"),
        ("11 7/6", "11 7/6"),  # improper: not a mixed number
        ("4 4/0", "4 4/0"),
        ("11/10 4/9", "11/10 4/9"),
        ("11.0 4/9", "11.0 4/9"),
        ("(11) 4/9", "(11) 4/9"),
        ("11\n5/6", "11\n5/6"),
        ("比例为13/28", "比例为 13/28"),
        ("总共有99颗", "总共有 99 颗"),
        ("Réponse : 220 $", "Answer: 220 $"),
        ("答案：5", "Answer: 5"),
    ],
)
def test_prepare_text(text, expected):
    assert prepare_text(text) == expected
