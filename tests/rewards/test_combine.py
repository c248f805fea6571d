"""Composition: per-component scores, batch forms, contained and counted failures, the error-rate
stop, and each row's verifier selecting its accuracy check."""

from __future__ import annotations

import math

import pytest

import r1lab.rewards.math as math_reward
from r1lab.errors import ConfigError, R1LabError
from r1lab.rewards import REWARDS, Completion, RewardResult
from r1lab.rewards.base import batch_form
from r1lab.rewards.combine import (
    RewardComponent,
    RewardErrorRateExceeded,
    check_error_rate,
    check_spec,
    score_completions,
)


def _register_test_rewards() -> None:
    if "test_flaky" in REWARDS:
        return

    @REWARDS.register("test_flaky")
    def flaky(c: Completion, fail_on: str = "boom") -> RewardResult:
        if fail_on in c.text:
            raise RuntimeError("flaky reward exploded")
        return RewardResult(0.5)

    @REWARDS.register("test_bad_type")
    def bad_type(c: Completion):
        return 1.0 if "nan" not in c.text else RewardResult(math.nan)

    @REWARDS.register("test_batch_boom")
    def batch_boom(c: Completion) -> RewardResult:
        return RewardResult(1.0)

    @batch_form(batch_boom)
    def batch_boom_batch(completions, ctx):
        raise ValueError("the whole batch failed")


_register_test_rewards()

ROW_MATH = {"answer": "\\frac{1}{2}", "verifier": "math"}
ROW_NUMBER = {"answer": "12", "verifier": "number"}
ROW_COUNTDOWN = {"answer": "24", "numbers": [4, 6, 1], "verifier": "countdown"}


def test_each_rows_verifier_grades_it_and_components_are_logged_separately():
    comps = [
        Completion("<think>r</think> <answer>0.5</answer>", ROW_MATH),
        Completion("<think>r</think> <answer>\\frac{2}{4}</answer>", ROW_MATH),
        Completion("<answer>0.6</answer>", ROW_MATH),
        Completion("<think>r</think> <answer>12</answer>", ROW_NUMBER),
        Completion("<answer>13</answer>", ROW_NUMBER),
        Completion("<think>r</think> <answer>4*6*1</answer>", ROW_COUNTDOWN),
        Completion("<answer>4*6*6</answer>", ROW_COUNTDOWN),
    ]
    spec = [RewardComponent("accuracy", 1.0), RewardComponent("format", 0.5)]
    check_spec(spec)
    table = score_completions(spec, comps)
    assert table.components["accuracy"] == [1, 1, 0, 1, 0, 1, 0]
    assert table.components["format"] == [1, 1, 0, 1, 0, 1, 0]
    assert table.total == [1.5, 1.5, 0, 1.5, 0, 1.5, 0]
    assert table.errors == {"accuracy": 0, "format": 0} and table.num_errors == 0
    m = table.metrics()
    assert m["reward/accuracy"] == pytest.approx(4 / 7) and m["reward_errors/format"] == 0.0


def test_math_is_graded_batch_wise(monkeypatch):
    calls = []
    real = math_reward.grade_answers

    def spy(golds, answers, *args, **kwargs):
        calls.append(len(golds))
        return real(golds, answers, *args, **kwargs)

    monkeypatch.setattr(math_reward, "grade_answers", spy)
    comps = [Completion(f"\\boxed{{{k}/2}}", ROW_MATH) for k in range(8)]
    comps += [Completion("<answer>12</answer>", ROW_NUMBER)]
    table = score_completions([RewardComponent("accuracy")], comps)
    assert calls == [8]  # one call for the step's 8 math rows, not 8 calls
    assert table.components["accuracy"] == [0, 1, 0, 0, 0, 0, 0, 0, 1]


def test_per_verifier_params_reach_only_their_verifier():
    comps = [Completion("so 0.5 it is", ROW_MATH), Completion("<answer>12</answer>", ROW_NUMBER)]
    spec = [RewardComponent("accuracy", params={"math": {"extractor": "last_number"}})]
    assert score_completions(spec, comps).components["accuracy"] == [1.0, 1.0]
    spec = [RewardComponent("accuracy", params={"extractor": "last_number"})]  # shared by both
    assert score_completions(spec, comps).components["accuracy"] == [1.0, 1.0]
    spec = [RewardComponent("accuracy", params={"math": {"timeout_s": 2.0}})]
    table = score_completions(spec, comps)
    assert table.errors["accuracy"] == 0  # number never saw timeout_s


def test_failures_score_zero_and_are_counted_never_raised():
    comps = [Completion(t, ROW_NUMBER) for t in ("ok", "boom", "nan", "fine")]
    spec = [
        RewardComponent("test_flaky"),
        RewardComponent("test_bad_type"),
        RewardComponent("test_batch_boom"),
    ]
    table = score_completions(spec, comps)
    assert table.components["test_flaky"] == [0.5, 0.0, 0.5, 0.5]
    assert table.errors == {"test_flaky": 1, "test_bad_type": 4, "test_batch_boom": 4}
    assert "flaky reward exploded" in table.results["test_flaky"][1].error
    assert "not RewardResult" in table.results["test_bad_type"][0].error
    assert "non-finite" in table.results["test_bad_type"][2].error
    assert "whole batch failed" in table.results["test_batch_boom"][0].error
    rows = [{"answer": "1"}, {"answer": "1", "verifier": "nosuch"}]
    table = score_completions([RewardComponent("accuracy")], [Completion("1", r) for r in rows])
    assert "no 'verifier'" in table.results["accuracy"][0].error
    err = table.results["accuracy"][1].error
    assert "unknown verifier 'nosuch'; known:" in err
    assert all(name in err for name in ("countdown", "math", "number"))


def test_timeouts_are_counted_and_the_error_rate_check_stops_the_run():
    comps = [Completion("\\boxed{9^{9^{9^{9}}}}", {"answer": "5", "verifier": "math"})]
    comps += [Completion("\\boxed{5}", {"answer": "5", "verifier": "math"})] * 3
    spec = [RewardComponent("accuracy", params={"timeout_s": 0.5}), RewardComponent("format")]
    table = score_completions(spec, comps)
    assert table.components["accuracy"] == [0.0, 1.0, 1.0, 1.0]
    assert table.errors["accuracy"] == 1 and table.timeouts["accuracy"] == 1
    assert table.metrics()["reward_timeouts/accuracy"] == 1.0
    assert table.error_rates() == {"accuracy": 0.25, "format": 0.0}
    check_error_rate(table, 0.25)  # at the threshold: goes on
    with pytest.raises(RewardErrorRateExceeded, match="'accuracy' failed on 1 of 4") as err:
        check_error_rate(table, 0.2, step=7)
    assert isinstance(err.value, R1LabError)
    assert "step 7" in str(err.value) and "1 timeouts" in str(err.value)
    with pytest.raises(ConfigError):
        check_error_rate(table, 1.5)


def test_spec_errors_are_caught_at_config_time():
    with pytest.raises(KeyError, match="unknown reward 'nosuch'"):
        check_spec([RewardComponent("nosuch")])
    with pytest.raises(ValueError, match="group ids"):
        score_completions([RewardComponent("format")], [Completion("x", {})], group_ids=[0, 1])
