"""Weighted composition of reward components, with failures contained, counted and checked.

A reward spec is a list of ``RewardComponent(name, weight, params)``, scored in order.
`score_completions` calls each component once for the whole step (its batch form when it has one,
so the math verifier grades the step in parallel in its process pool), records every component's
scores separately, and turns an exception or a timeout into a 0 for that sample with the error
recorded and counted, never raised. A component may read the verdicts of one listed before it
(`base.needs_component`: the length rewards read ``accuracy``); a weight of 0 scores and logs a
component without adding it to the total. `check_error_rate` is what the trainer calls on every
step's table: it stops a run whose rewards fail too often instead of training on garbage.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from r1lab.config import constrained, keyword_params, registered, takes_params
from r1lab.errors import ConfigError, R1LabError
from r1lab.rewards.base import (
    REWARDS,
    VERIFIERS,
    BatchContext,
    Completion,
    RewardResult,
    call_batch,
    call_one,
)
from r1lab.rewards.extract import EXTRACTORS

log = logging.getLogger(__name__)


class RewardErrorRateExceeded(R1LabError):
    """Too many reward calls failed in one step: training on those scores would be training on
    garbage. The message names the component, its error rate, the threshold and the first error."""


def _verifier_params(c: RewardComponent) -> tuple[str, str] | None:
    """``accuracy`` hands its params to each row's verifier: a mapping named after a verifier is
    that verifier's own; any other param must be one some verifier takes. Extractors registered."""
    for key, value in c.params.items() if c.name == "accuracy" else ():
        own = key in VERIFIERS  # a verifier's own section
        if own and not isinstance(value, dict):
            return f"params.{key}", f"a mapping of the params of the verifier {key!r}"
        for k, v in value.items() if own else [(key, value)]:
            takes = [keyword_params(VERIFIERS.get(n)) for n in ([key] if own else VERIFIERS)]
            if (not own and isinstance(v, dict)) or all(
                t is not None and k not in t for t in takes
            ):
                known = ", ".join(sorted(takes[0])) if own else ", ".join(VERIFIERS.names())
                what = (
                    f"the verifier {key!r} takes"
                    if own
                    else "some verifier takes, or one's section"
                )
                return f"params.{key}" + (f".{k}" if own else ""), f"a param {what} ({known})"
            if k == "extractor" and (allowed := registered(EXTRACTORS)(v)):
                return f"params.{key}" + (f".{k}" if own else ""), allowed
    return None


@constrained(takes_params(REWARDS), _verifier_params, name=registered(REWARDS))
@dataclass(frozen=True)
class RewardComponent:
    name: str
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RewardTable:
    """Scores of B completions.

    Shapes: ``total`` (B,); ``components[name]`` (B,) unweighted scores; ``results[name]`` (B,);
    ``errors[name]`` and ``timeouts[name]`` are counts (a timeout is also an error).
    """

    total: list[float]
    components: dict[str, list[float]]
    results: dict[str, list[RewardResult]]
    errors: dict[str, int]
    timeouts: dict[str, int] = field(default_factory=dict)

    @property
    def num_errors(self) -> int:
        return sum(self.errors.values())

    def error_rate(self) -> float:
        """Failed calls / all calls, over every component."""
        n = len(self.total) * max(1, len(self.components))
        return self.num_errors / n if n else 0.0

    def error_rates(self) -> dict[str, float]:
        """Per component: failed samples / samples."""
        n = len(self.total)
        return {k: (v / n if n else 0.0) for k, v in self.errors.items()}

    def metrics(self) -> dict[str, float]:
        """Flat step metrics: mean score, error and timeout counts of every component."""
        n = max(1, len(self.total))
        out: dict[str, float] = {"reward": sum(self.total) / n}
        for name, scores in self.components.items():
            out[f"reward/{name}"] = sum(scores) / n
            out[f"reward_errors/{name}"] = float(self.errors.get(name, 0))
            out[f"reward_timeouts/{name}"] = float(self.timeouts.get(name, 0))
        return out


def check_spec(spec: Sequence[RewardComponent]) -> None:
    """Fail early (at config time): unknown names, duplicates, a dependency not listed before."""
    seen: list[str] = []
    for comp in spec:
        fn = REWARDS.get(comp.name)
        if comp.name in seen:
            raise ConfigError(
                f"reward component {comp.name!r} is listed twice; scores are logged by name, "
                "so list each component once"
            )
        needs = getattr(fn, "needs", None)
        if needs is not None:
            dep = comp.params.get(needs[0], needs[1])
            if dep not in seen:
                raise ConfigError(
                    f"reward component {comp.name!r} reads the verdicts of {dep!r} "
                    f"(param {needs[0]!r}); list {dep!r} before it in the reward spec "
                    "(weight 0 scores it without adding it to the total)"
                )
        seen.append(comp.name)


def safe_call(name: str, c: Completion, params) -> RewardResult:
    """One component on one completion; an exception becomes a 0 with the error recorded."""
    try:
        fn = REWARDS.get(name)
    except KeyError as exc:
        return RewardResult(0.0, error=str(exc))
    return call_one(fn, c, params)


def score_completions(
    spec: Sequence[RewardComponent],
    completions: Sequence[Completion],
    group_ids: Sequence[Hashable] | None = None,
) -> RewardTable:
    """Score B completions with every component of ``spec``.

    Shapes: completions (B,); group_ids (B,) or None (ids equal for samples of one prompt, needed
    by group-level rewards such as ``kimi_length``) -> a `RewardTable` of (B,) lists.
    """
    if group_ids is not None and len(group_ids) != len(completions):
        raise ValueError(f"{len(group_ids)} group ids for {len(completions)} completions")
    components: dict[str, list[float]] = {}
    results: dict[str, list[RewardResult]] = {}
    errors: dict[str, int] = {}
    timeouts: dict[str, int] = {}
    total = [0.0] * len(completions)
    for comp in spec:
        ctx = BatchContext(group_ids=group_ids, results=dict(results))
        try:
            fn = REWARDS.get(comp.name)
        except KeyError as exc:
            res = [RewardResult(0.0, error=str(exc))] * len(completions)
        else:
            res = call_batch(fn, completions, ctx, comp.params)
        results[comp.name] = res
        components[comp.name] = [r.score for r in res]
        errors[comp.name] = sum(r.error is not None for r in res)
        timeouts[comp.name] = sum(bool(r.info.get("timeout")) for r in res)
        for i, r in enumerate(res):
            total[i] += comp.weight * r.score
        if errors[comp.name]:
            first = next(r.error for r in res if r.error)
            log.warning(
                "reward %s failed on %d/%d samples (%d timeouts): %s",
                comp.name,
                errors[comp.name],
                len(res),
                timeouts[comp.name],
                first,
            )
    return RewardTable(total, components, results, errors, timeouts)


def check_error_rate(table: RewardTable, max_error_rate: float, step: int | None = None) -> None:
    """Raise `RewardErrorRateExceeded` when any component failed on more than ``max_error_rate``
    of the step's samples (per component, so one broken verifier cannot hide behind others)."""
    if not 0.0 <= max_error_rate <= 1.0:
        raise ConfigError(f"reward error threshold must be in [0, 1], got {max_error_rate}")
    for name, rate in table.error_rates().items():
        if rate > max_error_rate:
            first = next(r.error for r in table.results[name] if r.error)
            where = f"step {step}: " if step is not None else ""
            raise RewardErrorRateExceeded(
                f"{where}reward component {name!r} failed on {table.errors[name]} of "
                f"{len(table.total)} samples ({rate:.0%}, {table.timeouts.get(name, 0)} timeouts; "
                f"threshold {max_error_rate:.0%}). First error: {first}. Fix the data or the "
                "reward params, or raise the threshold (grpo.reward_error_threshold)."
            )
