"""Rule-based rewards. Pure Python, no torch. Importing this package registers every reward."""

from r1lab.rewards.base import REWARDS, VERIFIERS, Completion, RewardResult

__all__ = ["REWARDS", "VERIFIERS", "Completion", "RewardResult"]

# Registration side effects: every module that registers rewards or verifiers.
from r1lab.rewards import components, synthetic  # noqa: E402,F401
