"""The statistics over seeds on worked numbers: exact t quantiles, the t-interval, the paired
difference and when a difference is called a finding."""

from __future__ import annotations

import math

import pytest

from r1lab.eval import seeds_stats as S

# two-sided 95% critical values of Student's t (standard tables, 6 decimals)
T95 = {1: 12.706205, 2: 4.302653, 3: 3.182446, 4: 2.776445, 5: 2.570582, 9: 2.262157,
       20: 2.085963, 29: 2.045230, 100: 1.983972}  # fmt: skip


@pytest.mark.parametrize("df", sorted(T95))
def test_t_critical_matches_the_table(df):
    assert S.t_critical(df) == pytest.approx(T95[df], abs=1e-6)


def test_t_central_mass_closed_forms():
    for t in (0.3, 1.0, 4.302653, 20.0):
        assert S.t_central_mass(t, 1) == pytest.approx(2 / math.pi * math.atan(t), abs=1e-12)
        assert S.t_central_mass(t, 2) == pytest.approx(t / math.sqrt(t * t + 2), abs=1e-12)
    # df 4: sin(theta) (1 + cos^2(theta) / 2)
    t = 1.7
    th = math.atan(t / 2)
    assert S.t_central_mass(t, 4) == pytest.approx(math.sin(th) * (1 + math.cos(th) ** 2 / 2))
    # large df tends to the normal: P(|Z| < 1.959964) = 0.95
    assert S.t_central_mass(1.959964, 4000) == pytest.approx(0.95, abs=2e-4)
    assert S.t_critical(2, 0.99) == pytest.approx(9.924843, abs=1e-6)


def test_t_critical_agrees_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 7, 30, 250):
        for conf in (0.9, 0.95, 0.99):
            assert S.t_critical(df, conf) == pytest.approx(
                stats.t.ppf((1 + conf) / 2, df), abs=1e-8
            )


def test_interval_over_three_seeds_worked():
    st = S.over_seeds([0.5, 0.6, 0.7])
    assert st.n == 3 and st.mean == pytest.approx(0.6) and st.sd == pytest.approx(0.1)
    half = 4.302653 * 0.1 / math.sqrt(3)  # 0.248414
    assert (st.lo, st.hi) == pytest.approx((0.6 - half, 0.6 + half), abs=1e-6)
    assert (st.lo, st.hi) == pytest.approx((0.351586, 0.848414), abs=1e-6)
    assert st.values == (0.5, 0.6, 0.7)
    same = S.over_seeds([0.25, 0.25])
    assert (same.lo, same.hi) == (0.25, 0.25)


def test_one_seed_or_a_nan_gives_no_interval_and_no_finding():
    one = S.over_seeds([0.4])
    assert one.mean == 0.4 and math.isnan(one.lo) and math.isnan(one.hi)
    assert not S.is_finding(S.paired_difference([0.1], [0.9]))
    bad = S.over_seeds([0.1, math.nan, 0.3])
    assert math.isnan(bad.mean) and not bad.excludes_zero
    with pytest.raises(ValueError):
        S.over_seeds([])


def test_paired_difference_and_finding():
    a, b = [0.1, 0.2, 0.3], [0.3, 0.3, 0.5]
    d = S.paired_difference(a, b)
    assert d.values == pytest.approx((0.2, 0.1, 0.2))
    assert d.mean == pytest.approx(1 / 6)
    assert (d.lo, d.hi) == pytest.approx((0.023245, 0.310088), abs=1e-6)
    assert S.is_finding(d)
    # the same arms unpaired (independent samples) would not exclude 0: pairing matters here
    sa, sb = S.over_seeds(a), S.over_seeds(b)
    assert sa.hi > sb.lo
    # differences that change sign across seeds are not a finding
    mixed = S.paired_difference([0.5, 0.5, 0.5], [0.6, 0.4, 0.62])
    assert mixed.lo < 0 < mixed.hi and not S.is_finding(mixed)
    negative = S.paired_difference(b, a)
    assert negative.hi < 0 and S.is_finding(negative)
    with pytest.raises(ValueError, match="one value per seed"):
        S.paired_difference([0.1, 0.2], [0.3])


def test_mean_curve_over_common_length():
    assert S.mean_curve([[1.0, 2.0, 3.0], [3.0, 4.0]]) == [2.0, 3.0]
    assert S.mean_curve([]) == []
