"""Each doctor check as a pure function: thresholds, streaks, missing metrics, messages."""

from __future__ import annotations

import math

import pytest

from r1lab.doctor import CHECKS, DoctorConfig
from r1lab.doctor.checks import (
    check_empty_response,
    check_entropy,
    check_kl,
    check_nonfinite,
    check_onpolicy_ratio,
    check_ratio,
    check_reward_errors,
    check_truncation,
    check_zero_variance,
    ratio_spread,
    streak,
)

CFG = DoctorConfig()


def rows(key: str, values: list[float], **extra) -> list[dict]:
    return [{"step": i, key: v, **extra} for i, v in enumerate(values)]


def run_last(fn, all_rows: list[dict], cfg: DoctorConfig = CFG):
    return fn(all_rows[-1], all_rows[:-1], cfg)


def test_registry_holds_every_check_with_its_metrics():
    assert CHECKS.names() == [
        "empty_response",
        "entropy",
        "kl",
        "nonfinite",
        "onpolicy_ratio",
        "ratio",
        "reward_errors",
        "truncation",
        "zero_variance",
    ]
    assert CHECKS.get("zero_variance").metrics == ("zero_variance_frac",)
    assert CHECKS.get("truncation").fn is check_truncation


def test_streak_counts_only_the_trailing_run():
    rs = [{"x": 1}, {"x": 0}, {"x": 1}, {"x": 1}]
    assert streak(rs, lambda r: r["x"] == 1) == 2
    assert streak(rs[:2], lambda r: r["x"] == 1) == 0
    assert streak([], lambda r: True) == 0


# -- zero-variance groups ------------------------------------------------------------------------


def test_zero_variance_always_zero_reward_stops_exactly_at_patience():
    cfg = DoctorConfig(zero_variance_patience=4)
    hist = rows("zero_variance_frac", [1.0] * 4, reward=0.0)
    for n in (1, 2, 3):  # before the patience runs out: a warning, not a stop
        (f,) = run_last(check_zero_variance, hist[:n], cfg)
        assert f.level == "warning" and f.step == n - 1
    (f,) = run_last(check_zero_variance, hist, cfg)
    assert f.level == "fatal" and f.step == 3 and f.value == 1.0
    assert "zero-variance group" in f.message and "4 consecutive steps" in f.message
    assert "mean reward 0.000" in f.message


def test_zero_variance_streak_is_broken_by_one_informative_step():
    cfg = DoctorConfig(zero_variance_patience=3)
    hist = rows("zero_variance_frac", [1.0, 1.0, 0.75, 1.0, 1.0])
    (f,) = run_last(check_zero_variance, hist, cfg)
    assert f.level == "warning"  # only 2 in a row since the 0.75 step


def test_zero_variance_warn_threshold_and_disabled_stop():
    assert run_last(check_zero_variance, rows("zero_variance_frac", [0.5])) == []  # not above
    (f,) = run_last(check_zero_variance, rows("zero_variance_frac", [0.625]))
    assert f.level == "warning" and "62%" in f.message
    never = DoctorConfig(zero_variance_patience=0)
    (f,) = run_last(check_zero_variance, rows("zero_variance_frac", [1.0] * 50), never)
    assert f.level == "warning"


# -- truncation, empty masks, reward errors ------------------------------------------------------


def test_truncation_warns_about_max_new_tokens_above_threshold_only():
    assert run_last(check_truncation, rows("truncation_rate", [0.3])) == []
    (f,) = run_last(check_truncation, rows("truncation_rate", [0.0, 1.0]))
    assert f.level == "warning" and f.step == 1 and f.value == 1.0
    assert "max_new_tokens too small?" in f.message and "100%" in f.message


def test_empty_response_warns_then_stops_when_every_mask_is_empty():
    cfg = DoctorConfig(empty_response_patience=2)
    assert run_last(check_empty_response, rows("empty_response_frac", [0.05]), cfg) == []
    (f,) = run_last(check_empty_response, rows("empty_response_frac", [0.25]), cfg)
    assert f.level == "warning" and "25%" in f.message
    (f,) = run_last(check_empty_response, rows("empty_response_frac", [1.0]), cfg)
    assert f.level == "warning"
    (f,) = run_last(check_empty_response, rows("empty_response_frac", [1.0, 1.0]), cfg)
    assert f.level == "fatal" and "empty loss mask" in f.message


def test_reward_errors_warn_above_rate():
    assert run_last(check_reward_errors, rows("reward_error_rate", [0.05])) == []
    (f,) = run_last(check_reward_errors, rows("reward_error_rate", [0.2]))
    assert f.level == "warning" and "20% of reward calls failed" in f.message


# -- NaN / inf -----------------------------------------------------------------------------------


def nan_row(step: int, skipped: float = 1.0) -> dict:
    return {"step": step, "loss": math.nan, "grad_norm": math.nan, "skipped_nonfinite": skipped}


def ok_row(step: int) -> dict:
    return {"step": step, "loss": 0.1, "grad_norm": 0.5, "skipped_nonfinite": 0.0}


def test_nonfinite_skipped_step_is_a_warning_and_counts_the_streak():
    assert run_last(check_nonfinite, [ok_row(0)]) == []
    (f,) = run_last(check_nonfinite, [ok_row(0), nan_row(1)])
    assert f.level == "warning" and f.step == 1 and "not applied" in f.message and f.value == 1.0
    (f,) = run_last(check_nonfinite, [nan_row(0), nan_row(1)])
    assert f.level == "warning" and f.value == 2.0


def test_nonfinite_stops_after_patience_consecutive_but_not_when_interleaved():
    cfg = DoctorConfig(nonfinite_patience=3)
    (f,) = run_last(check_nonfinite, [nan_row(0), nan_row(1), nan_row(2)], cfg)
    assert f.level == "fatal" and "3 consecutive steps" in f.message
    mixed = [nan_row(0), nan_row(1), ok_row(2), nan_row(3)]
    (f,) = run_last(check_nonfinite, mixed, cfg)
    assert f.level == "warning" and f.value == 1.0


def test_nonfinite_inf_grad_counts_and_an_applied_nan_step_is_fatal():
    row = {"step": 0, "loss": 1.0, "grad_norm": math.inf, "skipped_nonfinite": 1.0}
    (f,) = check_nonfinite(row, [], CFG)
    assert f.level == "warning"
    (f,) = check_nonfinite(nan_row(0, skipped=0.0), [], CFG)
    assert f.level == "fatal" and "APPLIED" in f.message


# -- importance ratio, KL, entropy ---------------------------------------------------------------


def test_ratio_spread_uses_the_inverse_of_small_ratios():
    assert ratio_spread({"ratio_max": 2.0, "ratio_min": 0.25}) == 4.0
    assert ratio_spread({"ratio_max": 3.0, "ratio_min": 0.5}) == 3.0
    assert ratio_spread({"ratio_max": 1.0, "ratio_min": 0.0}) == math.inf
    assert ratio_spread({}) is None


def test_ratio_warns_on_explosion_and_stops_when_it_persists():
    cfg = DoctorConfig(ratio_warn=10.0, ratio_stop=100.0, ratio_patience=2)
    calm = {"step": 0, "ratio_max": 1.2, "ratio_min": 0.9}
    assert check_ratio(calm, [], cfg) == []
    (f,) = check_ratio({"step": 1, "ratio_max": 1.1, "ratio_min": 0.05}, [calm], cfg)
    assert f.level == "warning" and f.value == pytest.approx(20.0) and "log-probs" in f.message
    big = [{"step": i, "ratio_max": 500.0, "ratio_min": 0.9} for i in range(2)]
    assert run_last(check_ratio, big[:1], cfg)[0].level == "warning"
    (f,) = run_last(check_ratio, big, cfg)
    assert f.level == "fatal" and "2 consecutive steps" in f.message


def test_kl_warns_then_stops_on_blow_up():
    cfg = DoctorConfig(kl_warn=1.0, kl_stop=5.0, kl_patience=2)
    assert run_last(check_kl, rows("kl", [1.0]), cfg) == []
    (f,) = run_last(check_kl, rows("kl", [0.01, 2.0]), cfg)
    assert f.level == "warning" and "2 per token" in f.message
    (f,) = run_last(check_kl, rows("kl", [6.0]), cfg)
    assert f.level == "warning"
    (f,) = run_last(check_kl, rows("kl", [6.0, 7.5]), cfg)
    assert f.level == "fatal" and "blew up" in f.message and f.value == 7.5


def test_entropy_collapse_absolute_floor_and_drop_from_first_value():
    assert run_last(check_entropy, rows("entropy", [2.0, 0.5])) == []
    (f,) = run_last(check_entropy, rows("entropy", [0.01]))
    assert f.level == "warning" and "0.01 nats/token" in f.message
    (f,) = run_last(check_entropy, rows("entropy", [math.nan, 2.0, 1.0, 0.19]))
    assert f.level == "warning" and "started at 2" in f.message  # 0.19 < 0.1 x 2.0
    assert run_last(check_entropy, rows("entropy", [2.0, 0.21])) == []


def test_onpolicy_ratio_warns_at_step_0_only_and_gives_the_measured_ratio():
    (f,) = run_last(check_onpolicy_ratio, rows("ratio_mean/first", [0.916]))
    assert f.level == "warning" and f.step == 0 and f.value == 0.916
    assert "0.916" in f.message and "grpo.old_logprobs=trainer" in f.message
    assert run_last(check_onpolicy_ratio, rows("ratio_mean/first", [0.985])) == []  # tolerance
    assert run_last(check_onpolicy_ratio, rows("ratio_mean/first", [1.0, 0.5])) == []  # step 1
    strict = DoctorConfig(onpolicy_ratio_tol=0.01)
    assert run_last(check_onpolicy_ratio, rows("ratio_mean/first", [0.985]), strict) != []


@pytest.mark.parametrize("name", CHECKS.names())
def test_every_check_is_silent_when_its_metrics_are_missing(name):
    assert CHECKS.get(name)({"step": 3, "reward": 0.0}, [{"step": 2}], CFG) == []
