"""The run doctor's checks: small pure functions over one step's metrics row and the rows before.

Each check is ``fn(row, history, cfg) -> list[Finding]``: ``row`` is the step's metrics row (the
dict the RL loop writes to metrics.jsonl), ``history`` the earlier rows, oldest first, and ``cfg``
a `DoctorConfig`. A check reads only the metrics it names; when they are absent from the row it
returns no finding (the `RunDoctor` reports checks whose metrics never appeared). A ``fatal``
finding means training cannot learn any more; the doctor then stops the run with its message.

| check          | metric(s)                                  | warns                     | stops                              |
|----------------|--------------------------------------------|---------------------------|------------------------------------|
| zero_variance  | zero_variance_frac                         | > zero_variance_warn      | all groups, zero_variance_patience |
| truncation     | truncation_rate                            | > truncation_warn         | never                              |
| empty_response | empty_response_frac                        | > empty_response_warn     | all masks, empty_response_patience |
| reward_errors  | reward_error_rate                          | > reward_error_warn       | never (grpo.reward_error_threshold)|
| nonfinite      | skipped_nonfinite, loss, grad_norm         | every skipped step        | nonfinite_patience in a row        |
| ratio          | ratio_max, ratio_min                       | spread > ratio_warn       | > ratio_stop, ratio_patience       |
| onpolicy_ratio | ratio_mean/first (step 0 only)             | off 1 by > tolerance      | never                              |
| kl             | kl                                         | > kl_warn                 | > kl_stop, kl_patience             |
| entropy        | entropy                                    | < floor or < drop x first | never                              |

Not here: computing the metrics (the RL loop and the learner do) and acting on findings (`RunDoctor`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from r1lab.doctor.config import DoctorConfig
from r1lab.registry import Registry

Row = Mapping[str, Any]
Level = Literal["warning", "fatal"]
CheckFn = Callable[[Row, Sequence[Row], DoctorConfig], "list[Finding]"]


@dataclass(frozen=True)
class Finding:
    """One problem seen at one step: which check, how bad, what to do about it."""

    check: str
    level: Level
    step: int
    message: str
    value: float


@dataclass(frozen=True)
class Check:
    """A registered check: its function and the metrics it reads (for the 'unchecked' report)."""

    name: str
    metrics: tuple[str, ...]
    fn: CheckFn

    def __call__(self, row: Row, history: Sequence[Row], cfg: DoctorConfig) -> list[Finding]:
        return self.fn(row, history, cfg)


CHECKS: Registry[Check] = Registry("doctor check")


def register(name: str, *metrics: str) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` as check ``name`` reading ``metrics``; the plain function is returned."""

    def deco(fn: CheckFn) -> CheckFn:
        CHECKS.add(name, Check(name, metrics, fn))
        return fn

    return deco


# -- helpers -------------------------------------------------------------------------------------


def value(row: Row, key: str) -> float | None:
    """The row's number under ``key`` (NaN and inf included), or None when absent / not a number."""
    v = row.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def step_of(row: Row, history: Sequence[Row]) -> int:
    s = value(row, "step")
    return int(s) if s is not None and math.isfinite(s) else len(history)


def streak(rows: Sequence[Row], pred: Callable[[Row], bool]) -> int:
    """How many of the LAST rows in a row satisfy ``pred``."""
    n = 0
    for r in reversed(rows):
        if not pred(r):
            break
        n += 1
    return n


def _at_least(key: str, threshold: float) -> Callable[[Row], bool]:
    def pred(r: Row) -> bool:
        v = value(r, key)
        return v is not None and v >= threshold

    return pred


def _finding(check: str, level: Level, row: Row, history: Sequence[Row], msg: str, v: float):
    return Finding(check, level, step_of(row, history), msg, v)


_ALL = 1.0 - 1e-9  # "every group" / "every response" for fractions computed in float


# -- checks --------------------------------------------------------------------------------------


@register("zero_variance", "zero_variance_frac")
def check_zero_variance(row: Row, history: Sequence[Row], cfg: DoctorConfig) -> list[Finding]:
    """Groups whose G rewards are all equal get advantage 0: no policy gradient from them."""
    frac = value(row, "zero_variance_frac")
    if frac is None or not math.isfinite(frac):
        return []
    n = streak([*history, row], _at_least("zero_variance_frac", _ALL))
    if cfg.zero_variance_patience and n >= cfg.zero_variance_patience:
        reward = value(row, "reward")
        shown = f"{reward:.3f}" if reward is not None else "n/a"
        msg = (
            f"no learning signal: every group was a zero-variance group (all G completions of "
            f"each prompt got the same reward; mean reward {shown}) for {n} consecutive steps, "
            "so every advantage is 0 and the policy gradient vanishes. Check the reward on a few "
            "samples (samples.jsonl), use easier data, a larger grpo.group_size or a higher "
            "sampling.temperature, or turn on grpo.dynamic_sampling; "
            "doctor.zero_variance_patience sets how long to wait"
        )
        return [_finding("zero_variance", "fatal", row, history, msg, frac)]
    if frac > cfg.zero_variance_warn:
        msg = (
            f"{frac:.0%} of groups are zero-variance groups (identical rewards within the group): "
            "they add no policy gradient; the task may be too hard or too easy for the model"
        )
        return [_finding("zero_variance", "warning", row, history, msg, frac)]
    return []


@register("truncation", "truncation_rate")
def check_truncation(row: Row, history: Sequence[Row], cfg: DoctorConfig) -> list[Finding]:
    """Completions cut at the length limit rarely hold a final answer."""
    rate = value(row, "truncation_rate")
    if rate is None or not rate > cfg.truncation_warn:
        return []
    msg = (
        f"{rate:.0%} of completions were truncated (hit the generation limit without stopping): "
        "sampling.max_new_tokens too small? Raise it, add a length penalty (reward 'overlong') "
        "or mask truncated samples out of the loss (grpo.mask_truncated)"
    )
    return [_finding("truncation", "warning", row, history, msg, rate)]


@register("empty_response", "empty_response_frac")
def check_empty_response(row: Row, history: Sequence[Row], cfg: DoctorConfig) -> list[Finding]:
    """Responses with an empty loss mask add nothing; when all are empty the loss is 0."""
    frac = value(row, "empty_response_frac")
    if frac is None or not math.isfinite(frac):
        return []
    n = streak([*history, row], _at_least("empty_response_frac", _ALL))
    if cfg.empty_response_patience and n >= cfg.empty_response_patience:
        msg = (
            f"every response had an empty loss mask for {n} consecutive steps (no completion "
            "tokens, or all masked out as truncated by grpo.mask_truncated): the loss is 0 and "
            "nothing is learned. Check the stop strings and sampling.max_new_tokens"
        )
        return [_finding("empty_response", "fatal", row, history, msg, frac)]
    if frac > cfg.empty_response_warn:
        msg = (
            f"{frac:.0%} of responses have an empty loss mask (no completion tokens, or masked "
            "out as truncated): they add nothing to the loss"
        )
        return [_finding("empty_response", "warning", row, history, msg, frac)]
    return []


@register("reward_errors", "reward_error_rate")
def check_reward_errors(row: Row, history: Sequence[Row], cfg: DoctorConfig) -> list[Finding]:
    """Failed reward calls score 0: the model is trained on the failure, not the task."""
    rate = value(row, "reward_error_rate")
    if rate is None or not rate > cfg.reward_error_warn:
        return []
    msg = (
        f"{rate:.0%} of reward calls failed and scored 0 (see the reward_errors/<component> "
        "metrics and the 'errors' of samples): fix the verifier or the data rows"
    )
    return [_finding("reward_errors", "warning", row, history, msg, rate)]


def _nonfinite_step(r: Row) -> bool:
    skipped = value(r, "skipped_nonfinite")
    if skipped is not None and skipped > 0:
        return True
    return any(
        v is not None and not math.isfinite(v) for v in (value(r, "loss"), value(r, "grad_norm"))
    )


@register("nonfinite", "skipped_nonfinite", "loss", "grad_norm")
def check_nonfinite(row: Row, history: Sequence[Row], cfg: DoctorConfig) -> list[Finding]:
    """NaN/inf loss or gradient: the learner skips the update; many in a row mean a broken run."""
    if not _nonfinite_step(row):
        return []
    loss, grad = value(row, "loss"), value(row, "grad_norm")
    if value(row, "skipped_nonfinite") == 0.0:
        msg = (
            f"a non-finite step was APPLIED (loss {loss}, grad_norm {grad}, skipped_nonfinite 0): "
            "the parameters may now hold NaN; the learner must skip such steps"
        )
        return [_finding("nonfinite", "fatal", row, history, msg, 1.0)]
    n = streak([*history, row], _nonfinite_step)
    if cfg.nonfinite_patience and n >= cfg.nonfinite_patience:
        msg = (
            f"{n} consecutive steps had a NaN/inf loss or gradient and were skipped: the run "
            "cannot recover. Lower grpo.lr, check rewards for inf/NaN, use float32 (model.dtype)"
        )
        return [_finding("nonfinite", "fatal", row, history, msg, float(n))]
    msg = (
        f"step skipped: loss {loss} / grad_norm {grad} not finite; the update was not applied "
        f"({n} in a row)"
    )
    return [_finding("nonfinite", "warning", row, history, msg, float(n))]


def ratio_spread(r: Row) -> float | None:
    """max(ratio_max, 1 / ratio_min): how far any token's pi_theta / pi_old is from 1."""
    hi, lo = value(r, "ratio_max"), value(r, "ratio_min")
    parts = []
    if hi is not None:
        parts.append(hi)
    if lo is not None:
        parts.append(1.0 / lo if lo > 0 else math.inf)
    finite = [p for p in parts if not math.isnan(p)]
    return max(finite) if finite else None


@register("ratio", "ratio_max", "ratio_min")
def check_ratio(row: Row, history: Sequence[Row], cfg: DoctorConfig) -> list[Finding]:
    """Importance ratios far from 1: learner and sampler disagree, or the policy moved too far."""
    spread = ratio_spread(row)
    if spread is None or not spread > cfg.ratio_warn:
        return []
    hi, lo = value(row, "ratio_max"), value(row, "ratio_min")
    cause = (
        "the learner's log-probs disagree with the sampler's (same temperature / top-p / top-k?) "
        "or the policy moves too far per update (lower grpo.lr, grpo.mu or grpo.mini_batches)"
    )

    def exploded(r: Row) -> bool:
        s = ratio_spread(r)
        return s is not None and s > cfg.ratio_stop

    n = streak([*history, row], exploded)
    if cfg.ratio_patience and n >= cfg.ratio_patience:
        msg = f"importance ratios exploded (max {hi}, min {lo}) for {n} consecutive steps: {cause}"
        return [_finding("ratio", "fatal", row, history, msg, spread)]
    msg = f"importance ratio pi_theta/pi_old reached max {hi}, min {lo}: {cause}"
    return [_finding("ratio", "warning", row, history, msg, spread)]


@register("onpolicy_ratio", "ratio_mean/first")
def check_onpolicy_ratio(row: Row, history: Sequence[Row], cfg: DoctorConfig) -> list[Finding]:
    """At step 0 nothing has moved the policy yet: the first update's ratio must average 1."""
    r = value(row, "ratio_mean/first")
    if history or r is None or not math.isfinite(r) or abs(r - 1.0) <= cfg.onpolicy_ratio_tol:
        return []
    msg = (
        f"the first update's mean importance ratio pi_theta/pi_old is {r:.3f}, not 1, before "
        "the policy moved: the old log-probs are not the trainer's (grpo.old_logprobs=sampler "
        "with sampling.top_p < 1 or top_k > 0 scores the truncated distribution, or the rollout "
        "engine computes differently), so the clip acts on tokens no update moved and GSPO "
        "clips whole sequences; set grpo.old_logprobs=trainer"
    )
    return [_finding("onpolicy_ratio", "warning", row, history, msg, r)]


@register("kl", "kl")
def check_kl(row: Row, history: Sequence[Row], cfg: DoctorConfig) -> list[Finding]:
    """KL to the reference far above normal: the policy has left the reference model behind."""
    kl = value(row, "kl")
    if kl is None or not (kl > cfg.kl_warn or math.isnan(kl)):
        return []

    def blown(r: Row) -> bool:
        v = value(r, "kl")
        return v is not None and (v > cfg.kl_stop or math.isnan(v))

    n = streak([*history, row], blown)
    if cfg.kl_patience and n >= cfg.kl_patience:
        msg = (
            f"KL to the reference blew up ({kl:.3g} per token, above doctor.kl_stop "
            f"{cfg.kl_stop:g} for {n} consecutive steps): lower grpo.lr or raise grpo.beta"
        )
        return [_finding("kl", "fatal", row, history, msg, kl)]
    msg = (
        f"KL to the reference is {kl:.3g} per token (above {cfg.kl_warn:g}): the policy drifts "
        "fast; lower grpo.lr or raise grpo.beta"
    )
    return [_finding("kl", "warning", row, history, msg, kl)]


@register("entropy", "entropy")
def check_entropy(row: Row, history: Sequence[Row], cfg: DoctorConfig) -> list[Finding]:
    """Entropy collapse: a near-deterministic policy stops exploring; groups stop differing."""
    ent = value(row, "entropy")
    if ent is None or not math.isfinite(ent):
        return []
    first = next(
        (v for r in history if (v := value(r, "entropy")) is not None and math.isfinite(v)), None
    )
    dropped = first is not None and first > 0 and ent < cfg.entropy_drop * first
    if not (ent < cfg.entropy_floor or dropped):
        return []
    since = f" (it started at {first:.3g})" if first is not None else ""
    msg = (
        f"entropy collapsed to {ent:.3g} nats/token{since}: the policy is nearly deterministic "
        "and stops exploring; raise sampling.temperature, use clip-higher (grpo.eps_high) or "
        "lower grpo.lr"
    )
    return [_finding("entropy", "warning", row, history, msg, ent)]
