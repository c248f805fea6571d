"""The (gold, model output, expected) table of `math_cases.py`, graded in one batch."""

from __future__ import annotations

import pytest
from math_cases import CASES, KNOWN_MISSES

from r1lab.rewards import Completion
from r1lab.rewards.base import BatchContext
from r1lab.rewards.math import verify_math_batch


@pytest.fixture(scope="module")
def verdicts() -> dict[tuple[str, str], object]:
    comps = [Completion(out, {"answer": gold, "verifier": "math"}) for gold, out, _ in CASES]
    results = verify_math_batch(comps, BatchContext(), extractor="auto", cache=False)
    return {(gold, out): r for (gold, out, _), r in zip(CASES, results)}


def test_table_is_large_and_covers_both_verdicts():
    assert len(CASES) >= 150
    assert len({(g, o) for g, o, _ in CASES}) == len(CASES)
    assert sum(e for *_, e in CASES) > 60 and sum(not e for *_, e in CASES) > 60
    assert {(g, o) for g, o, _ in CASES} >= KNOWN_MISSES


@pytest.mark.parametrize(
    "gold,output,expected",
    [
        pytest.param(*case, marks=pytest.mark.xfail(strict=True, reason="math-verify verdict"))
        if case[:2] in KNOWN_MISSES
        else case
        for case in CASES
    ],
)
def test_case(verdicts, gold, output, expected):
    result = verdicts[(gold, output)]
    assert result.error is None, result.error
    assert (result.score == 1.0) is expected, result
