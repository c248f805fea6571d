"""The ``accuracy`` component: each row's own verifier (``row["verifier"]``) grades it.

One spec thus serves mixed tasks (math rows, Countdown rows, ...) without ``if dataset == ...``.
The batch form groups the step's samples by verifier and calls each verifier's batch form when it
has one (``math`` grades a whole step in its process pool). Params go to every verifier, except a
param named after a verifier, a mapping that goes to that verifier only:
``{extractor: boxed, math: {timeout_s: 2.0}}``. ``format`` lives in `rewards.format`
and is re-exported here for older imports.
"""

from __future__ import annotations

from collections.abc import Sequence

from r1lab.rewards.base import (
    REWARDS,
    VERIFIERS,
    BatchContext,
    Completion,
    RewardResult,
    batch_form,
    call_batch,
)
from r1lab.rewards.format import format_reward, is_r1_zero_format

__all__ = ["accuracy_reward", "accuracy_batch", "format_reward", "is_r1_zero_format"]

_NO_VERIFIER = RewardResult(0.0, error="data row has no 'verifier' field")


@REWARDS.register("accuracy")
def accuracy_reward(c: Completion, **verifier_params) -> RewardResult:
    """Score of the row's own verifier (``row["verifier"]``), so one spec serves mixed tasks."""
    name = c.row.get("verifier")
    if not name:
        return _NO_VERIFIER
    return VERIFIERS.get(name)(c, **params_for(str(name), verifier_params))


def params_for(verifier: str, params: dict) -> dict:
    """Shared params plus the verifier's own section (``params[verifier]``), the latter winning."""
    shared = {k: v for k, v in params.items() if k not in VERIFIERS}
    own = params.get(verifier) or {}
    if not isinstance(own, dict):
        raise TypeError(f"accuracy param {verifier!r} must be a mapping of that verifier's params")
    return {**shared, **own}


@batch_form(accuracy_reward)
def accuracy_batch(
    completions: Sequence[Completion], ctx: BatchContext, **verifier_params
) -> list[RewardResult]:
    """Shapes: completions (B,) -> (B,). Unknown verifier names score 0 with the known names."""
    out: list[RewardResult] = [_NO_VERIFIER] * len(completions)
    by_name: dict[str, list[int]] = {}
    for i, c in enumerate(completions):
        if c.row.get("verifier"):
            by_name.setdefault(str(c.row["verifier"]), []).append(i)
    for name, idx in by_name.items():
        try:
            fn = VERIFIERS.get(name)
        except KeyError as exc:
            for i in idx:
                out[i] = RewardResult(0.0, error=str(exc))
            continue
        sub_ctx = BatchContext(
            group_ids=None if ctx.group_ids is None else [ctx.group_ids[i] for i in idx],
            results={k: [v[i] for i in idx] for k, v in ctx.results.items()},
        )
        subset = [completions[i] for i in idx]
        for i, r in zip(idx, call_batch(fn, subset, sub_ctx, params_for(name, verifier_params))):
            out[i] = r
    return out
