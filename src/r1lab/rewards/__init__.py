"""Rule-based rewards. Pure Python, no torch. Importing this package registers every reward.

Importing stays light: math-verify/sympy load only inside the math worker processes, and the
Latin-script language detector only on first use.
"""

from r1lab.rewards.base import REWARDS, VERIFIERS, BatchContext, Completion, RewardResult

__all__ = ["REWARDS", "VERIFIERS", "BatchContext", "Completion", "RewardResult"]

# Registration side effects: every module that registers rewards or verifiers.
from r1lab.rewards import (  # noqa: E402,F401
    code,
    components,
    format,
    language,
    length,
    math,
    preference,
    synthetic,
)
