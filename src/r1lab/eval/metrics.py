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


def normalize_answer(answer: str) -> str:
    """A canonical key for grouping answers by string equality.

    Strips surrounding whitespace, ``$`` signs, one trailing period and one ``\\text{...}`` wrapper,
    removes inner whitespace, drops thousands separators (``1,000`` -> ``1000``) and writes any
    plain number (integer, decimal or ``a/b``) as a reduced fraction (``0.50`` -> ``1/2``,
    ``2.0`` -> ``2``), so numerically equal plain numbers share a key. LaTeX such as
    ``\\frac{1}{2}`` is not evaluated: pass an ``equivalent`` callable for that.
    """
    s = answer.strip().strip("$").strip()
    s = s[:-1] if s.endswith(".") else s
    m = _TEXT_WRAP.match(s)
    s = m.group(1) if m else s
    s = "".join(s.split())
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    value = _as_number(s)
    return s if value is None else str(value)


def _as_number(s: str) -> Fraction | None:
    if not s or len(s) > 64:
        return None
    try:
        if s.count("/") == 1:
            num, den = s.split("/")
            return Fraction(int(num), int(den))
        return Fraction(s)
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
