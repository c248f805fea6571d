"""Length shaping and repetition rewards (algorithms.md §5, §12.1, §12.2, §12.4).

| name          | formula (t = completion length)                                          | paper |
|---------------|--------------------------------------------------------------------------|-------|
| `cosine`      | ``vL + 0.5 (v0 - vL)(1 + cos(pi t / L_max))``, endpoints by correctness;  | Yeo et al. 2502.03373 |
|               | ``r_exceed`` when the limit is hit (``truncated`` or ``t + margin >= L_max``) | |
| `overlong`    | DAPO Eq. 13: 0 up to ``L_max - L_cache``, then linear to -1 at ``L_max``, -1 beyond | DAPO 2503.14476 |
| `kimi_length` | per prompt group: ``lam = 0.5 - (t - min)/(max - min)``; lam if correct,   | Kimi k1.5 2501.12599 |
|               | ``min(0, lam)`` if wrong; 0 for all when max == min                       | |
| `repetition`  | ``(1 - U/N) * max_penalty`` over lower-cased whitespace word n-grams     | Yeo App. C.2 |

Lengths are tokens (``Completion.num_tokens``) unless ``unit="chars"`` (open-r1 measures
characters). ``L_max`` is the ``max_len`` param, or the completion's ``max_tokens`` when 0.
`cosine` and `kimi_length` read correctness from the component named by ``correct_from``
(default ``accuracy``, which must be listed earlier in the spec; give it weight 0 to use the
cosine reward *instead* of the plain accuracy, as Yeo et al. do): a sample is correct when that
score is >= ``correct_at``. Yeo's code adds the repetition penalty to wrong answers only; here
`repetition` is its own component and applies to every sample.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

from r1lab.errors import ConfigError
from r1lab.rewards.base import (
    REWARDS,
    BatchContext,
    Completion,
    RewardResult,
    batch_form,
    needs_component,
)

# -- formulas: free functions of named scalars --------------------------------------------------


def cosine_scaled(
    t: float,
    max_len: float,
    correct: bool,
    r0c: float = 2.0,
    rLc: float = 1.0,
    r0w: float = -10.0,
    rLw: float = 0.0,
    r_exceed: float | None = -10.0,
    exceed_margin: float = 16.0,
    truncated: bool = False,
) -> float:
    """Yeo et al. cosine length-scaled reward (defaults: their section-4 scripts)."""
    if max_len <= 0:
        raise ConfigError(f"cosine reward: max_len must be > 0, got {max_len}")
    if r_exceed is not None and (truncated or t + exceed_margin >= max_len):
        return r_exceed
    v0, vL = (r0c, rLc) if correct else (r0w, rLw)
    progress = min(t, max_len) / max_len
    return vL + 0.5 * (v0 - vL) * (1.0 + math.cos(math.pi * progress))


def soft_overlong_penalty(t: float, max_len: float, cache_len: float, factor: float = 1.0) -> float:
    """DAPO Eq. 13 times ``factor``: 0, then ``(L_exp - t)/L_cache``, then -1 past ``max_len``."""
    if not 0 < cache_len < max_len:
        raise ConfigError(
            f"overlong reward: need 0 < cache_len < max_len, got cache_len={cache_len}, "
            f"max_len={max_len} (set params.cache_len below the generation limit)"
        )
    expected = max_len - cache_len
    if t <= expected:
        return 0.0
    if t <= max_len:
        return factor * (expected - t) / cache_len
    return -factor


def kimi_length_rewards(lengths: Sequence[float], correct: Sequence[bool]) -> list[float]:
    """Kimi k1.5 length reward for the k samples of one problem.

    Shapes: lengths (k,), correct (k,) -> (k,).
    """
    if len(lengths) != len(correct):
        raise ValueError(f"{len(lengths)} lengths for {len(correct)} correctness flags")
    lo, hi = min(lengths), max(lengths)
    if hi == lo:
        return [0.0] * len(lengths)
    lam = [0.5 - (t - lo) / (hi - lo) for t in lengths]
    return [x if ok else min(0.0, x) for x, ok in zip(lam, correct)]


def repetition_penalty(text: str, ngram: int = 3, max_penalty: float = -1.0) -> float:
    """``(1 - distinct/total n-grams) * max_penalty``; 0 for fewer than ``ngram`` words."""
    if max_penalty > 0:
        raise ConfigError(f"repetition reward: max_penalty must be <= 0, got {max_penalty}")
    if ngram < 1:
        raise ConfigError(f"repetition reward: ngram must be >= 1, got {ngram}")
    words = text.lower().split()
    if len(words) < ngram:
        return 0.0
    grams = [tuple(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]
    return (1.0 - len(set(grams)) / len(grams)) * max_penalty


# -- reward components ---------------------------------------------------------------------------


def _length(c: Completion, unit: str) -> int:
    if unit == "tokens":
        return c.num_tokens
    if unit == "chars":
        return len(c.text)
    raise ConfigError(f"length unit must be 'tokens' or 'chars', got {unit!r}")


def _max_len(c: Completion, max_len: int, name: str) -> int:
    limit = max_len or c.max_tokens
    if limit <= 0:
        raise ConfigError(f"{name}: set params.max_len (the completion carries no max_tokens)")
    return limit


def _verdicts(ctx: BatchContext, correct_from: str, n: int) -> Sequence[RewardResult]:
    found = ctx.results.get(correct_from)
    if found is None:
        raise ConfigError(
            f"needs the verdicts of {correct_from!r}: list it earlier in the reward spec"
        )
    if len(found) != n:
        raise ValueError(f"{correct_from!r} has {len(found)} results for {n} samples")
    return found


def _failed(dep: RewardResult, correct_from: str) -> RewardResult:
    return RewardResult(0.0, error=f"{correct_from} failed for this sample: {dep.error}")


@needs_component()
@REWARDS.register("cosine")
def cosine_reward(c: Completion, **params) -> RewardResult:
    raise ConfigError("cosine reads correctness from another component: use score_completions")


@batch_form(cosine_reward)
def cosine_batch(
    completions: Sequence[Completion],
    ctx: BatchContext,
    max_len: int = 0,
    unit: str = "tokens",
    correct_from: str = "accuracy",
    correct_at: float = 1.0,
    **shape,
) -> list[RewardResult]:
    """Shapes: (B,) -> (B,). ``shape``: r0c, rLc, r0w, rLw, r_exceed, exceed_margin."""
    out = []
    for c, dep in zip(completions, _verdicts(ctx, correct_from, len(completions))):
        if dep.error is not None:
            out.append(_failed(dep, correct_from))
            continue
        t, limit = _length(c, unit), _max_len(c, max_len, "cosine")
        correct = dep.score >= correct_at
        score = cosine_scaled(t, limit, correct, truncated=c.truncated, **shape)
        out.append(RewardResult(score, info={"length": t, "correct": correct}))
    return out


@REWARDS.register("overlong")
def overlong_reward(
    c: Completion,
    max_len: int = 0,
    cache_len: int = 4096,
    factor: float = 1.0,
    unit: str = "tokens",
) -> RewardResult:
    """DAPO soft overlong punishment (defaults: ``cache_len`` 4096; ``max_len`` = the limit)."""
    t = _length(c, unit)
    limit = _max_len(c, max_len, "overlong")
    return RewardResult(soft_overlong_penalty(t, limit, cache_len, factor), info={"length": t})


@needs_component()
@REWARDS.register("kimi_length")
def kimi_length_reward(c: Completion, **params) -> RewardResult:
    raise ConfigError("kimi_length is group-level: use score_completions(..., group_ids=...)")


@batch_form(kimi_length_reward)
def kimi_length_batch(
    completions: Sequence[Completion],
    ctx: BatchContext,
    unit: str = "tokens",
    correct_from: str = "accuracy",
    correct_at: float = 1.0,
) -> list[RewardResult]:
    """Shapes: (B,) with ``ctx.group_ids`` (B,) -> (B,); min/max are taken within each group."""
    if ctx.group_ids is None:
        raise ConfigError(
            "kimi_length needs the prompt group of every sample: call "
            "score_completions(spec, completions, group_ids=[prompt index of each sample])"
        )
    verdicts = _verdicts(ctx, correct_from, len(completions))
    groups: dict[Hashable, list[int]] = {}
    for i, g in enumerate(ctx.group_ids):
        groups.setdefault(g, []).append(i)
    out: list[RewardResult] = [RewardResult(0.0)] * len(completions)
    for idx in groups.values():
        lengths = [_length(completions[i], unit) for i in idx]
        correct = [verdicts[i].score >= correct_at for i in idx]
        for i, score in zip(idx, kimi_length_rewards(lengths, correct)):
            if verdicts[i].error is not None:
                out[i] = _failed(verdicts[i], correct_from)
            else:
                info = {"length": _length(completions[i], unit), "group_size": len(idx)}
                out[i] = RewardResult(score, info=info)
    return out


@REWARDS.register("repetition")
def repetition_reward(c: Completion, ngram: int = 3, max_penalty: float = -1.0) -> RewardResult:
    return RewardResult(repetition_penalty(c.text, ngram, max_penalty))
