"""Length shaping and repetition: the worked numbers of algorithms.md §5, §12 and §15 (atol 1e-6)."""

from __future__ import annotations

import pytest

from r1lab.errors import ConfigError
from r1lab.rewards import Completion
from r1lab.rewards.combine import RewardComponent, check_spec, score_completions
from r1lab.rewards.length import (
    cosine_scaled,
    kimi_length_rewards,
    repetition_penalty,
    soft_overlong_penalty,
)

ATOL = 1e-6


@pytest.mark.parametrize(
    "t,correct,wrong",
    [(0, 2.0, -10.0), (3584, 1.853553, -8.535534), (7168, 1.5, -5.0), (14000, 1.001355, -0.013548)],
)
def test_cosine_yeo_defaults(t, correct, wrong):
    assert cosine_scaled(t, 14336, True) == pytest.approx(correct, abs=ATOL)
    assert cosine_scaled(t, 14336, False) == pytest.approx(wrong, abs=ATOL)


@pytest.mark.parametrize("t,value", [(250, 0.926777), (500, 0.75), (1000, 0.5)])
def test_cosine_open_r1_function_defaults(t, value):
    # open-r1: correct 1.0 (short) .. 0.5 (long), wrong -1.0 .. -0.5, no exceed branch
    kw = dict(r0c=1.0, rLc=0.5, r0w=-1.0, rLw=-0.5, r_exceed=None)
    assert cosine_scaled(t, 1000, True, **kw) == pytest.approx(value, abs=ATOL)
    assert cosine_scaled(t, 1000, False, **kw) == pytest.approx(-value, abs=ATOL)


def test_cosine_exceed_penalty():
    assert cosine_scaled(14320, 14336, True) == -10.0  # t + 16 >= L_max
    assert cosine_scaled(14319, 14336, True) == pytest.approx(1.000003, abs=ATOL)
    assert cosine_scaled(100, 14336, True, truncated=True) == -10.0


@pytest.mark.parametrize(
    "t,value", [(16000, 0.0), (16384, 0.0), (18432, -0.5), (20480, -1.0), (20481, -1.0)]
)
def test_soft_overlong_dapo(t, value):
    assert soft_overlong_penalty(t, 20480, 4096) == pytest.approx(value, abs=ATOL)


@pytest.mark.parametrize("t,value", [(6, 0.0), (8, -0.5), (10, -1.0), (11, -1.0)])
def test_soft_overlong_small(t, value):
    assert soft_overlong_penalty(t, 10, 4) == pytest.approx(value, abs=ATOL)


def test_soft_overlong_rejects_a_cache_longer_than_the_limit():
    with pytest.raises(ConfigError, match="cache_len"):
        soft_overlong_penalty(5, 128, 4096)


def test_kimi_worked_example_and_equal_lengths():
    got = kimi_length_rewards([100, 200, 300, 500], [True, True, False, False])
    assert got == pytest.approx([0.5, 0.25, 0.0, -0.5], abs=ATOL)
    assert kimi_length_rewards([7, 7, 7], [True, False, True]) == [0.0, 0.0, 0.0]


def test_repetition_worked_example():
    assert repetition_penalty("a b c a b c a b c") == pytest.approx(-0.571429, abs=ATOL)
    assert repetition_penalty("A b C a B c a b c") == pytest.approx(-0.571429, abs=ATOL)
    assert repetition_penalty("a b") == 0.0 and repetition_penalty("") == 0.0
    assert repetition_penalty("one two three four five") == 0.0
    assert repetition_penalty("a b c a b c a b c", ngram=3, max_penalty=-2.0) == pytest.approx(
        -1.142857, abs=ATOL
    )
    with pytest.raises(ConfigError):
        repetition_penalty("a b c", max_penalty=0.5)


def _completions(lengths, answers):
    row = {"answer": "5", "verifier": "number"}
    return [
        Completion(f"<answer>{a}</answer>", row, num_tokens=n, max_tokens=20480)
        for n, a in zip(lengths, answers)
    ]


def test_kimi_component_uses_each_prompt_group_separately():
    # two groups: the section 12.2 example, and a group of equal lengths
    comps = _completions([100, 200, 300, 500, 50, 50], ["5", "5", "4", "3", "5", "1"])
    spec = [RewardComponent("accuracy", 0.0), RewardComponent("kimi_length", 1.0)]
    check_spec(spec)
    table = score_completions(spec, comps, group_ids=[0, 0, 0, 0, 1, 1])
    assert table.components["kimi_length"] == pytest.approx([0.5, 0.25, 0.0, -0.5, 0, 0], abs=ATOL)
    assert table.total == table.components["kimi_length"]  # accuracy has weight 0
    # without group ids the component fails loudly (counted), it does not guess the groups
    table = score_completions(spec, comps)
    assert table.errors["kimi_length"] == 6
    assert "group_ids" in table.results["kimi_length"][0].error


def test_cosine_and_overlong_components_read_lengths_and_correctness():
    comps = _completions([3584, 3584, 18432], ["5", "4", "5"])
    spec = [
        RewardComponent("accuracy", 0.0),
        RewardComponent("cosine", 1.0, {"max_len": 14336}),
        RewardComponent("overlong", 1.0, {"cache_len": 4096}),  # max_len from max_tokens 20480
    ]
    table = score_completions(spec, comps)
    assert table.components["cosine"][:2] == pytest.approx([1.853553, -8.535534], abs=ATOL)
    assert table.components["cosine"][2] == -10.0  # 18432 > 14336: exceeded
    assert table.components["overlong"] == pytest.approx([0.0, 0.0, -0.5], abs=ATOL)


def test_a_reward_that_reads_accuracy_needs_it_listed_before():
    with pytest.raises(ConfigError, match="list 'accuracy' before"):
        check_spec([RewardComponent("cosine"), RewardComponent("accuracy")])
    with pytest.raises(ConfigError, match="listed twice"):
        check_spec([RewardComponent("format"), RewardComponent("format")])
