"""The reward interface: ``fn(completion: Completion, **params) -> RewardResult``.

A reward may also have a *batch form*, ``fn.batch(completions, ctx, **params) -> list[RewardResult]``
(attached with `batch_form`); `combine.score_completions` calls it instead of the per-sample form.
Rewards that grade in a process pool (``math``) use it to send a whole step at once, and group-level
rewards (Kimi k1.5 length) use ``ctx.group_ids`` to find the other samples of the same prompt.
A reward that reads another component's verdicts (the length rewards read correctness) declares it
with `needs_component`; `combine.check_spec` then requires that component earlier in the spec.

Two registries:
- ``REWARDS``: reward *components* a recipe lists by name with a weight (``accuracy``, ``format``...).
- ``VERIFIERS``: per-row answer checkers; each data row names its verifier (``number``,
  ``countdown``, ``math``, ``code``...) and the ``accuracy`` component dispatches on it.

Rewards never raise to the trainer: `combine.score_completions` turns an exception into a 0 score
with the error recorded and counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
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


@dataclass(frozen=True)
class BatchContext:
    """What a batch-form reward may see besides the B completions of one step.

    Shapes:
        group_ids: (B,) hashable ids, equal for samples of the same prompt (a GRPO group of G);
            None when the caller passed none (group-level rewards then report an error).
        results[name]: (B,) results of the components listed earlier in the spec this step.
    """

    group_ids: Sequence[Hashable] | None = None
    results: Mapping[str, Sequence[RewardResult]] = field(default_factory=dict)


BatchFn = Callable[..., list[RewardResult]]


def batch_form(per_sample: RewardFn) -> Callable[[BatchFn], BatchFn]:
    """Decorator: register ``batch_fn(completions, ctx, **params)`` as ``per_sample.batch``."""

    def deco(batch_fn: BatchFn) -> BatchFn:
        per_sample.batch = batch_fn  # type: ignore[attr-defined]
        return batch_fn

    return deco


def needs_component(param: str = "correct_from", default: str = "accuracy"):
    """Decorator: the reward reads ``ctx.results[params.get(param, default)]``."""

    def deco(fn: RewardFn) -> RewardFn:
        fn.needs = (param, default)  # type: ignore[attr-defined]
        return fn

    return deco


def call_batch(fn: RewardFn, completions: Sequence[Completion], ctx: BatchContext, params):
    """``fn``'s batch form when it has one, else its per-sample form with each failure contained.

    Shapes: completions (B,) -> results (B,). A failure of the batch form as a whole (or a wrong
    number of results) scores every sample 0 with the error recorded; it never raises.
    """
    batch = getattr(fn, "batch", None)
    if batch is None:
        return [call_one(fn, c, params) for c in completions]
    try:
        results = list(batch(completions, ctx, **params))
    except Exception as exc:  # rewards never raise to the trainer
        return [RewardResult(0.0, error=f"{type(exc).__name__}: {exc}")] * len(completions)
    if len(results) != len(completions):
        err = f"batch reward returned {len(results)} results for {len(completions)} samples"
        return [RewardResult(0.0, error=err)] * len(completions)
    return [_checked(r) for r in results]


def call_one(fn: RewardFn, c: Completion, params: Mapping[str, Any]) -> RewardResult:
    try:
        return _checked(fn(c, **params))
    except Exception as exc:  # rewards never raise to the trainer
        return RewardResult(0.0, error=f"{type(exc).__name__}: {exc}")


def _checked(result: object) -> RewardResult:
    if not isinstance(result, RewardResult):
        return RewardResult(0.0, error=f"reward returned {type(result).__name__}, not RewardResult")
    if not math.isfinite(result.score):
        return RewardResult(0.0, error=f"reward returned a non-finite score {result.score}")
    return result
