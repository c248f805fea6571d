"""The reward interface: ``fn(completion: Completion, **params) -> RewardResult``.

Two registries:
- ``REWARDS``: reward *components* a recipe lists by name with a weight (``accuracy``, ``format``...).
- ``VERIFIERS``: per-row answer checkers; each data row names its verifier (``number``,
  ``countdown``, ``math``, ``code``...) and the ``accuracy`` component dispatches on it.

Rewards never raise to the trainer: `combine.score_completions` turns an exception into a 0 score
with the error recorded and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from r1lab.registry import Registry


@dataclass(frozen=True)
class Completion:
    """What a reward sees: the completion text, its data row and generation facts."""

    text: str
    row: Mapping[str, Any]
    num_tokens: int = 0
    truncated: bool = False
    max_tokens: int = 0


@dataclass(frozen=True)
class RewardResult:
    """A score plus what a user needs to debug it (``error`` set means the reward failed)."""

    score: float
    error: str | None = None
    extracted: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)


RewardFn = Callable[..., RewardResult]

REWARDS: Registry[RewardFn] = Registry("reward")
VERIFIERS: Registry[RewardFn] = Registry("verifier")
