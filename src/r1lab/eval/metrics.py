"""Evaluation statistics of the R1 protocol (algorithms.md section 11). Pure Python: no torch.

- ``pass@1`` (R1): the mean over problems of the mean correctness of the k samples.
- unbiased ``pass@k`` (Chen et al. 2021, the Codex paper): ``1 - C(n-c, k) / C(n, k)`` per problem,
  computed in the numerically stable product form ``1 - prod_{j=n-c+1}^{n} (1 - k/j)``.
- ``cons@k``: majority vote over the extracted final answers, answers grouped by equivalence.
  The paper leaves ties unspecified; ours: among the tied groups, the group whose first member
  occurs earliest in sample order wins (so the result is deterministic).
- Uncertainty: the standard error of a mean over problems, and a seeded percentile bootstrap over
  problems. Both treat problems as the sampled unit (the k samples of a problem stay together).

What this module does not do: extract answers or decide correctness (that is the verifiers' job,
``r1lab.rewards``), or run models.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from fractions import Fraction

from r1lab.errors import R1LabError


class MetricInputError(R1LabError, ValueError):
    """Impossible counts or mismatched lengths given to a metric function."""


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with `n` samples of which `c` are correct.

    The probability that at least one of `k` samples drawn without replacement from the `n` is
    correct. Example: n 16, c 4 -> k 1: 0.25, k 4: 0.728022, k 8: 0.961538; n 5, c 2, k 4 -> 1.0.
    """
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise MetricInputError(f"pass@k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:  # every k-subset contains a correct sample
        return 1.0
    prod = 1.0
    for j in range(n - c + 1, n + 1):
        prod *= 1.0 - k / j
    return 1.0 - prod


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """Mean of `pass_at_k` over problems given as ``(n, c)`` pairs."""
    if not counts:
        raise MetricInputError("mean_pass_at_k needs at least one problem")
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)


def pass_at_1(correct: Sequence[Sequence[bool]]) -> float:
    """R1's pass@1: mean over problems of the mean correctness of each problem's samples.

    ``pass_at_1([[1, 0, 0, 1]]) == 0.5``. Problems may have different sample counts.
    """
    return mean(per_problem_accuracy(correct))


def per_problem_accuracy(correct: Sequence[Sequence[bool]]) -> list[float]:
    out = []
    for i, row in enumerate(correct):
        if len(row) == 0:
            raise MetricInputError(f"problem {i} has no samples")
        out.append(sum(bool(x) for x in row) / len(row))
    if not out:
        raise MetricInputError("no problems to score")
    return out


# --- answer equivalence and the majority vote -------------------------------------------------

_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_TEXT_WRAP = re.compile(r"^\\(?:text|textbf|mathrm|mbox)\{(.*)\}$")
_BOXED_WRAP = re.compile(r"^\\(?:boxed|fbox)\{(.*)\}$")
_FRAC_VARIANT = re.compile(r"\\[dtc]frac(?![A-Za-z])")
_FRAC_BRACED = re.compile(r"\\frac\{([^{}]*)\}\{([^{}]*)\}")
_FRAC_SHORT = re.compile(r"\\frac(\d)(\d)")  # \frac13
_FRAC_MIXED = re.compile(r"\\frac\{([^{}]*)\}(\d)|\\frac(\d)\{([^{}]*)\}")
_SPACING = re.compile(r"\\left|\\right|\\[,;:! ]|\\quad|\\qquad")
_VAR_EQUALS = re.compile(r"^[A-Za-z](?:_\{?\w+\}?)?=(?!=)")
_ELLIPSIS = re.compile(r"(?:\.\.\.|…|\\ldots|\\dots|\\cdots)$")
_REPEATING = re.compile(
    r"^(-?)(\d*)\.(\d*)(?:\\overline\{(\d+)\}|(\d*)(\.\.\.|…|\\ldots|\\dots|\\cdots))$"
)


def normalize_answer(answer: str) -> str:
    """A canonical key for grouping answers by string equality.

    Strips surrounding whitespace, ``$`` signs, a ``\\boxed{}`` / ``\\text{...}`` wrapper, one
    trailing period, ``\\left`` / ``\\right`` and LaTeX spacing, a leading ``x =``; removes inner
    whitespace; writes ``\\dfrac`` / ``\\tfrac`` / ``\\frac13`` / ``\\frac{1}{3}`` as ``(1)/(3)``;
    drops thousands separators (``1,000`` -> ``1000``; ``1,2`` is left alone); reads repeating
    decimals (``0.333...``, ``0.333…``, ``0.1\\overline{6}``) as the fraction they denote; and
    writes any plain number (integer, decimal or ``a/b``) as a reduced fraction (``0.50`` ->
    ``1/2``, ``2.0`` -> ``2``), so numerically equal plain numbers share a key (``\\frac13``,
    ``1/3`` and ``0.333…`` are one vote). Other LaTeX is not evaluated: pass an ``equivalent``
    callable for that.
    """
    s = answer.strip().strip("$").strip()
    for wrap in (_BOXED_WRAP, _TEXT_WRAP):
        m = wrap.match(s)
        s = m.group(1).strip() if m else s
    if s.endswith(".") and not _ELLIPSIS.search(s):
        s = s[:-1]
    s = "".join(_SPACING.sub(" ", s).split())
    s = _VAR_EQUALS.sub("", s)
    s = _FRAC_VARIANT.sub(r"\\frac", s)
    s = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_MIXED.sub(lambda m: f"\\frac{{{m[1] or m[3]}}}{{{m[2] or m[4]}}}", s)
    s = _FRAC_BRACED.sub(r"(\1)/(\2)", s)
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    value = _as_number(s)
    return s if value is None else str(value)


def _repeating_decimal(s: str) -> Fraction | None:
    """``0.333...`` / ``0.1\\overline{6}`` -> the fraction; the period of an ellipsis is the
    shortest digit group written at least twice at the end (``0.1666...`` -> 1/6)."""
    m = _REPEATING.match(s)
    if m is None:
        return None
    sign, whole, head = m[1], m[2] or "0", m[3]
    if m[4] is not None:
        prefix, period = head, m[4]
    else:
        digits = head + m[5]
        for p in range(1, len(digits) // 2 + 1):
            if digits[-p:] * 2 == digits[-2 * p :]:
                prefix, period = digits[: -2 * p].rstrip(), digits[-p:]
                while prefix.endswith(period):
                    prefix = prefix[: -len(period)]
                break
        else:
            return Fraction(f"{sign}{whole}.{digits or 0}")
    value = (
        Fraction(int(whole))
        + Fraction(int(prefix or "0"), 10 ** len(prefix))
        + Fraction(int(period), 10 ** len(prefix) * (10 ** len(period) - 1))
    )
    return -value if sign else value


def _as_number(s: str) -> Fraction | None:
    if not s or len(s) > 64:
        return None
    repeating = _repeating_decimal(s)
    if repeating is not None:
        return repeating
    sign = -1 if s.startswith("-(") else 1
    s = s[1:] if sign < 0 else s
    try:
        if s.count("/") == 1:
            num, den = (part.removeprefix("(").removesuffix(")") for part in s.split("/"))
            return sign * Fraction(num) / Fraction(den)
        return sign * Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def vote_groups(
    answers: Sequence[str | None],
    correct: Sequence[bool] | None = None,
    equivalent: Callable[[str, str], bool] | None = None,
) -> list[list[int]]:
    """Sample indices grouped by answer equivalence, groups in order of first occurrence.

    None answers are left out. With `correct` given, all correct samples form one group (each was
    judged equivalent to the gold answer by the verifier); the other answers are grouped with
    `equivalent(representative, answer)` against each group's first member (greedy, in sample
    order), or by `normalize_answer` equality when no callable is given.
    """
    if correct is not None and len(correct) != len(answers):
        raise MetricInputError(f"{len(answers)} answers but {len(correct)} correctness flags")
    groups: list[list[int]] = []
    correct_group: list[int] | None = None
    by_key: dict[str, list[int]] = {}
    for i, ans in enumerate(answers):
        if ans is None:
            continue
        if correct is not None and correct[i]:
            if correct_group is None:
                correct_group = []
                groups.append(correct_group)
            correct_group.append(i)
            continue
        if equivalent is None:
            group = by_key.get(normalize_answer(ans))
            if group is None:
                group = by_key[normalize_answer(ans)] = []
                groups.append(group)
        else:
            candidates = (g for g in groups if g is not correct_group)
            group = next((g for g in candidates if equivalent(answers[g[0]], ans)), None)
            if group is None:
                group = []
                groups.append(group)
        group.append(i)
    return groups


def majority_vote(
    answers: Sequence[str | None],
    correct: Sequence[bool] | None = None,
    equivalent: Callable[[str, str], bool] | None = None,
) -> tuple[str | None, int]:
    """The majority answer and the index of its first occurrence.

    Answers are grouped as in `vote_groups`; the largest group wins. Tie rule: among the largest
    groups, the one whose first member occurs earliest wins. None answers never win unless all
    answers are None, which returns ``(None, 0)``. ``("42", "41", "42", "7") -> ("42", 0)``.
    """
    if not answers:
        raise MetricInputError("majority_vote needs at least one answer")
    groups = vote_groups(answers, correct, equivalent)
    if not groups:
        return None, 0
    # max() keeps the first maximal element, and groups are ordered by first occurrence.
    best = max(groups, key=len)
    return answers[best[0]], best[0]


def cons_at_k(
    answers: Sequence[str | None],
    correct: Sequence[bool],
    equivalent: Callable[[str, str], bool] | None = None,
) -> float:
    """1.0 iff the majority-vote answer of one problem's samples is correct (0.0 if no answer)."""
    if len(correct) != len(answers):
        raise MetricInputError(f"{len(answers)} answers but {len(correct)} correctness flags")
    winner, index = majority_vote(answers, correct, equivalent)
    return float(winner is not None and bool(correct[index]))


def mean_cons_at_k(
    problems: Sequence[tuple[Sequence[str | None], Sequence[bool]]],
    equivalent: Callable[[str, str], bool] | None = None,
) -> float:
    """Mean of `cons_at_k` over problems given as ``(answers, correct)`` pairs."""
    if not problems:
        raise MetricInputError("mean_cons_at_k needs at least one problem")
    return mean([cons_at_k(a, c, equivalent) for a, c in problems])


# --- uncertainty ------------------------------------------------------------------------------


def mean(values: Sequence[float]) -> float:
    if not values:
        raise MetricInputError("mean of no values")
    return sum(values) / len(values)


def standard_error(values: Sequence[float]) -> float:
    """Standard error of the mean, ``s / sqrt(N)`` with the n-1 (Bessel) sample std; 0 if N < 2."""
    n = len(values)
    if n < 2:
        return 0.0
    m = mean(values)
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    return math.sqrt(var / n)


def bootstrap_ci(
    values: Sequence[float],
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    stat: Callable[[Sequence[float]], float] = mean,
) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` interval of `stat` over `values` (one per problem).

    Resamples the N values with replacement `n_boot` times with ``random.Random(seed)``, so the
    interval is reproducible; the bounds are the ``alpha/2`` and ``1 - alpha/2`` quantiles of the
    resampled statistics (nearest-rank).
    """
    if not values:
        raise MetricInputError("bootstrap_ci needs at least one value")
    if not 0.0 < alpha < 1.0 or n_boot < 1:
        raise MetricInputError(
            f"bootstrap_ci needs 0 < alpha < 1 and n_boot >= 1 (got {alpha}, {n_boot})"
        )
    rng = random.Random(seed)
    n = len(values)
    stats = sorted(stat([values[rng.randrange(n)] for _ in range(n)]) for _ in range(n_boot))
    lo = stats[max(0, math.ceil(alpha / 2 * n_boot) - 1)]
    hi = stats[min(n_boot - 1, math.ceil((1 - alpha / 2) * n_boot) - 1)]
    return lo, hi


def pass_k_values(k: int) -> list[int]:
    """The k' reported as pass@k' for k samples: powers of two up to k, and k itself."""
    if k < 1:
        raise MetricInputError(f"k must be >= 1, got {k}")
    out = [1 << i for i in range(k.bit_length()) if (1 << i) <= k]
    return out if out[-1] == k else [*out, k]
