"""Thresholds of the run doctor, one typed frozen dataclass (the ``doctor:`` section of a recipe).

A fraction is a share of the step's completions or groups, in [0, 1]; a warning fires when the
value is ABOVE its threshold. A patience is a number of consecutive steps; ``0`` turns that stop
off (the warning still fires).
"""

from __future__ import annotations

from dataclasses import dataclass

from r1lab.errors import ConfigError


@dataclass(frozen=True)
class DoctorConfig:
    enabled: bool = True
    disable: tuple[str, ...] = ()  # names of checks to skip (see r1lab.doctor.CHECKS)
    # zero-variance groups: every completion of a prompt got the same reward -> advantage 0
    zero_variance_warn: float = 0.5
    zero_variance_patience: int = 10  # stop after this many steps with ALL groups zero-variance
    # truncated completions (hit sampling.max_new_tokens without stopping)
    truncation_warn: float = 0.3
    # responses whose loss mask is empty (no tokens, or masked out as truncated)
    empty_response_warn: float = 0.05
    empty_response_patience: int = 3  # stop after this many steps with EVERY mask empty
    # failed reward calls (the hard stop is grpo.reward_error_threshold, checked before the update)
    reward_error_warn: float = 0.05
    # steps skipped by the learner because the loss or the gradient was NaN/inf
    nonfinite_patience: int = 3  # stop after this many consecutive skipped steps
    # importance ratio pi_theta / pi_old: spread = max(ratio_max, 1 / ratio_min)
    ratio_warn: float = 10.0
    ratio_stop: float = 1000.0
    ratio_patience: int = 3
    # step 0: the first update's mean ratio pi_theta / pi_old further than this from 1 means the
    # old log-probs are not the trainer's (grpo.old_logprobs: sampler with top-p / top-k)
    onpolicy_ratio_tol: float = 0.02
    # mean per-token KL to the reference model
    kl_warn: float = 1.0
    kl_stop: float = 20.0
    kl_patience: int = 3
    # mean per-token entropy of the policy (nats)
    entropy_floor: float = 0.05
    entropy_drop: float = 0.1  # warn when entropy < this share of its first observed value

    def __post_init__(self) -> None:
        for name in ("zero_variance_warn", "truncation_warn", "empty_response_warn"):
            _fraction(name, getattr(self, name))
        _fraction("reward_error_warn", self.reward_error_warn)
        _fraction("entropy_drop", self.entropy_drop)
        _fraction("onpolicy_ratio_tol", self.onpolicy_ratio_tol)
        for name in (
            "zero_variance_patience",
            "empty_response_patience",
            "nonfinite_patience",
            "ratio_patience",
            "kl_patience",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"doctor.{name} must be >= 0 (0 = never stop), got {getattr(self, name)}"
                )
        if not 1.0 < self.ratio_warn <= self.ratio_stop:
            raise ConfigError(
                f"doctor: need 1 < ratio_warn <= ratio_stop, got ratio_warn={self.ratio_warn}, "
                f"ratio_stop={self.ratio_stop}"
            )
        if not 0.0 < self.kl_warn <= self.kl_stop:
            raise ConfigError(
                f"doctor: need 0 < kl_warn <= kl_stop, got kl_warn={self.kl_warn}, "
                f"kl_stop={self.kl_stop}"
            )
        if self.entropy_floor < 0:
            raise ConfigError(f"doctor.entropy_floor must be >= 0, got {self.entropy_floor}")


def _fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"doctor.{name} is a fraction in [0, 1], got {value}")
