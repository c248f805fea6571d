"""Evaluation metrics: algorithms.md section 15 numbers, brute-force oracles, the vote's tie rule."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from r1lab.errors import R1LabError
from r1lab.eval import metrics as M

ATOL = 1e-6


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (16, 4, 1, 0.25),
        (16, 4, 4, 0.728022),
        (16, 4, 8, 0.961538),
        (5, 2, 4, 1.0),
        (16, 0, 8, 0.0),
        (16, 16, 1, 1.0),
    ],
)
def test_pass_at_k_worked_examples(n, c, k, expected):
    assert M.pass_at_k(n, c, k) == pytest.approx(expected, abs=ATOL)


def test_pass_at_k_exact_fractions():
    assert M.pass_at_k(16, 4, 4) == pytest.approx(1 - 495 / 1820, abs=1e-12)
    assert M.pass_at_k(16, 4, 8) == pytest.approx(1 - 495 / 12870, abs=1e-12)


def _brute_force_pass_at_k(flags: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(range(len(flags)), k))
    return sum(any(flags[i] for i in s) for s in subsets) / len(subsets)


def test_pass_at_k_equals_enumeration_over_subsets():
    rng = random.Random(7)
    for _ in range(60):
        n = rng.randint(1, 12)
        flags = [rng.random() < rng.random() for _ in range(n)]
        k = rng.randint(1, n)
        got = M.pass_at_k(n, sum(flags), k)
        assert got == pytest.approx(_brute_force_pass_at_k(flags, k), abs=1e-9), (flags, k)


def test_pass_at_k_stable_for_large_n():
    # the product form stays accurate where binomials overflow floats
    got = M.pass_at_k(2000, 3, 1000)
    expected = 1 - math.comb(1997, 1000) / math.comb(2000, 1000)
    assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(R1LabError, match="pass@k needs"):
        M.pass_at_k(n, c, k)


def test_mean_pass_at_k_and_pass_at_1():
    assert M.mean_pass_at_k([(16, 4), (5, 2)], 4) == pytest.approx((0.728022 + 1.0) / 2, abs=ATOL)
    assert M.pass_at_1([[1, 0, 0, 1]]) == pytest.approx(0.5, abs=ATOL)
    assert M.pass_at_1([[1, 0, 0, 1], [1, 1, 1, 1], [0, 0]]) == pytest.approx(0.5, abs=ATOL)
    # pass@1 is unbiased pass@k at k = 1
    counts = [(4, 2), (4, 4), (4, 0), (4, 1)]
    flags = [[True] * c + [False] * (n - c) for n, c in counts]
    assert M.pass_at_1(flags) == pytest.approx(M.mean_pass_at_k(counts, 1), abs=1e-12)
    with pytest.raises(R1LabError):
        M.pass_at_1([[1, 0], []])


def test_majority_vote_worked_example():
    assert M.majority_vote(["42", "41", "42", "7"]) == ("42", 0)


def test_majority_vote_tie_rule_earliest_first_occurrence():
    # "41" and "42" both have two votes; "41" occurs first (index 1 < 2)
    assert M.majority_vote(["7", "41", "42", "42", "41"]) == ("41", 1)
    assert M.majority_vote(["b", "a"]) == ("b", 0)
    # a strict majority beats an earlier single vote
    assert M.majority_vote(["x", "y", "y"]) == ("y", 1)


def test_majority_vote_none_never_wins_unless_all_none():
    assert M.majority_vote([None, None, None, "5"]) == ("5", 3)
    assert M.majority_vote([None, None]) == (None, 0)
    with pytest.raises(R1LabError):
        M.majority_vote([])


def test_majority_vote_groups_equivalent_strings():
    # normalized: spacing, $...$, thousands separator, trailing period, decimal vs fraction
    assert M.majority_vote(["3", "1,000", "1000.", "$1000$", "3"]) == ("1,000", 1)
    assert M.majority_vote(["0.5", "2", "1/2", "2"]) == ("0.5", 0)  # tie 2-2, 0.5 first
    assert M.normalize_answer(" \\text{ 12 } ") == "12"
    assert M.normalize_answer("2.50") == "5/2"
    assert M.normalize_answer("x + 1") == "x+1"


def test_majority_vote_custom_equivalence():
    same_parity = lambda a, b: int(a) % 2 == int(b) % 2  # noqa: E731
    assert M.majority_vote(["1", "2", "4", "3", "6"], equivalent=same_parity) == ("2", 1)


def test_equal_numbers_written_differently_are_one_vote():
    # \frac13, 1/3 and 0.333... are one wrong answer: 3 votes beat the 2 correct ones
    answers = ["\\frac13", "5", "1/3", "5", "0.333…"]
    correct = [False, True, False, True, False]
    assert M.cons_at_k(answers, correct) == 0.0
    keys = {
        M.normalize_answer(a) for a in ["\\frac13", "1/3", "0.333…", "0.333...", "\\dfrac{1}{3}"]
    }
    assert keys == {"1/3"}
    assert M.normalize_answer("0.1\\overline{6}") == M.normalize_answer("1/6") == "1/6"
    assert M.normalize_answer("0.142857142857...") == "1/7"
    assert M.normalize_answer("-\\frac{2}{4}") == "-1/2"
    assert M.normalize_answer("x = \\boxed{3}") != M.normalize_answer("3")  # box inside: kept
    assert M.normalize_answer("x = 3") == "3"
    assert M.normalize_answer("0.333") == "333/1000"  # no ellipsis: not 1/3
    assert M.normalize_answer("1,2") == "1,2"  # not a thousands group


def test_correct_answers_form_one_group():
    # the verifier judged "1/2" and "0.5000" and "\\frac{1}{2}" all correct: one group of 3 wins
    answers = ["7", "\\frac{1}{2}", "7", "0.5000", "1/2"]
    correct = [False, True, False, True, True]
    assert M.majority_vote(answers, correct) == ("\\frac{1}{2}", 1)
    assert M.cons_at_k(answers, correct) == 1.0
    assert M.cons_at_k(["7", "7", "8"], [False, False, True]) == 0.0
    assert M.cons_at_k([None, None], [False, False]) == 0.0
    assert M.mean_cons_at_k([(answers, correct), (["7", "7", "8"], [False, False, True])]) == 0.5


def test_standard_error_and_bootstrap():
    values = [1.0, 0.0, 0.5, 0.25, 0.75]
    se = statistics.stdev(values) / math.sqrt(len(values))
    assert M.standard_error(values) == pytest.approx(se, abs=1e-12)
    assert M.standard_error([0.3]) == 0.0
    lo, hi = M.bootstrap_ci(values, seed=3)
    assert (lo, hi) == M.bootstrap_ci(values, seed=3)  # seeded: reproducible
    assert 0.0 <= lo < M.mean(values) < hi <= 1.0
    # the 95% interval of the mean is about mean +- 1.96 se for many values
    rng = random.Random(0)
    many = [float(rng.random() < 0.3) for _ in range(400)]
    lo, hi = M.bootstrap_ci(many, n_boot=2000, seed=1)
    se = M.standard_error(many)
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert M.bootstrap_ci([0.4, 0.4, 0.4]) == (pytest.approx(0.4), pytest.approx(0.4))


def test_pass_k_values():
    assert M.pass_k_values(8) == [1, 2, 4, 8]
    assert M.pass_k_values(6) == [1, 2, 4, 6]
    assert M.pass_k_values(1) == [1]


def test_metrics_module_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, r1lab.eval.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
