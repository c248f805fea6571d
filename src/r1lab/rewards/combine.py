"""Weighted composition of reward components, with failures contained and counted.

A reward spec is a list of ``(name, weight, params)``. `score_completions` calls every component
on every completion; an exception scores 0 for that sample and is recorded, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from r1lab.rewards.base import REWARDS, Completion, RewardResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RewardComponent:
    name: str
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RewardTable:
    """Scores of N completions: ``total`` (N,), ``components[name]`` (N,), errors per component."""

    total: list[float]
    components: dict[str, list[float]]
    results: dict[str, list[RewardResult]]
    errors: dict[str, int]

    @property
    def num_errors(self) -> int:
        return sum(self.errors.values())

    def error_rate(self) -> float:
        n = len(self.total) * max(1, len(self.components))
        return self.num_errors / n if n else 0.0


def check_spec(spec: Sequence[RewardComponent]) -> None:
    """Fail early (at config time) on unknown component names."""
    for comp in spec:
        REWARDS.get(comp.name)


def safe_call(name: str, c: Completion, params: Mapping[str, Any]) -> RewardResult:
    try:
        result = REWARDS.get(name)(c, **params)
    except Exception as exc:  # rewards never raise to the trainer
        return RewardResult(0.0, error=f"{type(exc).__name__}: {exc}")
    if not isinstance(result, RewardResult):
        return RewardResult(0.0, error=f"reward {name!r} returned {type(result).__name__}")
    return result


def score_completions(
    spec: Sequence[RewardComponent], completions: Sequence[Completion]
) -> RewardTable:
    components: dict[str, list[float]] = {}
    results: dict[str, list[RewardResult]] = {}
    errors: dict[str, int] = {}
    total = [0.0] * len(completions)
    for comp in spec:
        res = [safe_call(comp.name, c, comp.params) for c in completions]
        results[comp.name] = res
        components[comp.name] = [r.score for r in res]
        errors[comp.name] = sum(r.error is not None for r in res)
        for i, r in enumerate(res):
            total[i] += comp.weight * r.score
        if errors[comp.name]:
            first = next(r.error for r in res if r.error)
            log.warning("reward %s failed on %d samples: %s", comp.name, errors[comp.name], first)
    return RewardTable(total=total, components=components, results=results, errors=errors)
