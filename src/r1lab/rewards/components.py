"""The foundation reward components: ``accuracy`` (dispatches to the row's verifier) and
``format`` (strict R1-Zero tags: ``<think>...</think>`` then ``<answer>...</answer>``, nothing else)."""

from __future__ import annotations

import re

from r1lab.rewards.base import REWARDS, VERIFIERS, Completion, RewardResult

_R1_ZERO = re.compile(r"^\s*<think>(.+?)</think>\s*<answer>(.+?)</answer>\s*$", re.DOTALL)


@REWARDS.register("accuracy")
def accuracy_reward(c: Completion, **verifier_params) -> RewardResult:
    """Score of the row's own verifier (``row["verifier"]``), so one spec serves mixed tasks."""
    name = c.row.get("verifier")
    if not name:
        return RewardResult(0.0, error="data row has no 'verifier' field")
    return VERIFIERS.get(name)(c, **verifier_params)


def is_r1_zero_format(text: str) -> bool:
    m = _R1_ZERO.match(text)
    if m is None:
        return False
    think, answer = m.group(1), m.group(2)
    tags = ("<think>", "</think>", "<answer>", "</answer>")
    return not any(t in think or t in answer for t in tags)


@REWARDS.register("format")
def format_reward(c: Completion) -> RewardResult:
    """1.0 iff the completion is exactly one think block followed by one answer block."""
    return RewardResult(float(is_r1_zero_format(c.text)))
