"""Statistics over seeds: mean, per-seed values and a 95% t-interval of one metric, and of the
difference between two arms paired by seed. Pure Python: no torch, no scipy.

Each seed is one full run, so a metric measured over ``n`` seeds is ``n`` numbers. The interval
over seeds is Student's t-interval ``mean +- t_{(1+conf)/2, n-1} * sd / sqrt(n)`` (``sd`` with
``n - 1`` in the denominator). Why t and not a bootstrap over seeds: with 3 seeds a bootstrap has
10 distinct resamples and its percentile interval never leaves the range of the 3 values, so it
is too narrow by construction; the t-interval assumes roughly normal seed-to-seed variation and
pays for having few seeds with its ``n - 1`` degrees of freedom (``t = 4.303`` for 3 seeds). That
it is wide is the honest answer.

A difference between two arms (B - A) is taken seed by seed, because the arms of one seed share
its starting model, its evaluation problems and its sampling seed: ``d_s = b_s - a_s``, then the
t-interval of the ``d_s``. It is called a finding only when that interval excludes 0.

The t quantile is exact for integer degrees of freedom: the CDF of Student's t is a finite series
in ``theta = atan(t / sqrt(df))`` (Abramowitz & Stegun 26.7.3-4), inverted by bisection.

What this module does not do: the interval over problems inside one run (`r1lab.eval.metrics`),
or reading runs and writing reports (`r1lab.eval.seeds_report`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95


def t_central_mass(t: float, df: int) -> float:
    """P(-t < T < t) for Student's T with integer `df` >= 1 and t >= 0 (A&S 26.7.3-4).

    Example: df 2 -> ``t / sqrt(t^2 + 2)``; ``t_central_mass(4.302653, 2) = 0.95``.
    """
    if df < 1 or int(df) != df:
        raise ValueError(f"df must be a positive integer, got {df}")
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 1:  # (2/pi) [theta + sin(theta) (cos + 2/3 cos^3 + 2*4/(3*5) cos^5 + ...)]
        term, total = math.cos(theta), 0.0
        for k in range(1, (df - 1) // 2 + 1):  # powers 1, 3, ..., df - 2
            total += term
            term *= (2 * k) / (2 * k + 1) * c2
        return 2.0 / math.pi * (theta + s * total)
    term, total = 1.0, 0.0  # sin(theta) (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
    for k in range(1, df // 2 + 1):  # powers 0, 2, ..., df - 2
        total += term
        term *= (2 * k - 1) / (2 * k) * c2
    return s * total


def t_critical(df: int, confidence: float = CONFIDENCE) -> float:
    """The t with ``P(-t < T < t) = confidence``, i.e. the ``(1 + confidence) / 2`` quantile.

    Example: df 2 -> 4.302653, df 4 -> 2.776445, df 29 -> 2.045230 (95%).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    lo, hi = 0.0, 1.0
    while t_central_mass(hi, df) < confidence:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_central_mass(mid, df) < confidence:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class SeedStat:
    """One metric over seeds: the per-seed values, their mean, sample sd and t-interval.

    With one seed (or a NaN among the values) ``sd``, ``lo`` and ``hi`` are NaN.
    """

    values: tuple[float, ...]
    mean: float
    sd: float
    lo: float
    hi: float
    confidence: float = CONFIDENCE

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def excludes_zero(self) -> bool:
        """True when the interval over seeds lies strictly on one side of 0 (never with NaN)."""
        return self.lo > 0.0 or self.hi < 0.0


def over_seeds(values: Sequence[float], confidence: float = CONFIDENCE) -> SeedStat:
    """Mean, sample sd (n - 1) and t-interval of one value per seed.

    Example: (0.5, 0.6, 0.7) -> mean 0.6, sd 0.1, 95% interval [0.351586, 0.848414].
    """
    vals = tuple(float(v) for v in values)
    if not vals:
        raise ValueError("over_seeds needs at least one value")
    nan = math.nan
    if any(math.isnan(v) for v in vals):
        return SeedStat(vals, nan, nan, nan, nan, confidence)
    n = len(vals)
    m = math.fsum(vals) / n
    if n < 2:
        return SeedStat(vals, m, nan, nan, nan, confidence)
    sd = math.sqrt(math.fsum((v - m) ** 2 for v in vals) / (n - 1))
    half = t_critical(n - 1, confidence) * sd / math.sqrt(n)
    return SeedStat(vals, m, sd, m - half, m + half, confidence)


def paired_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> SeedStat:
    """`over_seeds` of ``b[s] - a[s]``: arm B minus arm A, paired by seed.

    Example: a (0.1, 0.2, 0.3), b (0.3, 0.3, 0.5) -> differences (0.2, 0.1, 0.2), mean 0.166667,
    95% interval [0.023245, 0.310088]: it excludes 0, a finding.
    """
    if len(a) != len(b):
        raise ValueError(
            f"paired_difference needs one value per seed in both arms: {len(a)} vs {len(b)}"
        )
    return over_seeds([float(y) - float(x) for x, y in zip(a, b)], confidence)


def is_finding(diff: SeedStat) -> bool:
    """A difference over seeds is a finding when its interval over seeds excludes 0 (>= 2 seeds)."""
    return diff.n >= 2 and diff.excludes_zero


def mean_curve(curves: Sequence[Sequence[float]]) -> list[float]:
    """Pointwise mean of per-seed curves over their common length (a stopped run is shorter)."""
    if not curves:
        return []
    n = min(len(c) for c in curves)
    return [math.fsum(c[i] for c in curves) / len(curves) for i in range(n)]
