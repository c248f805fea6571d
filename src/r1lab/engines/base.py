"""The `Generator` protocol every rollout engine implements (HF on CPU/GPU, vLLM, endpoints).

A generator turns prompts into `Rollout`s: token ids, text, per-token log-probs under the sampling
distribution and a finish reason. One contract test suite (tests/engines/) runs on every engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from r1lab.types import Rollout, SamplingParams


@runtime_checkable
class Generator(Protocol):
    def generate(self, prompts: Sequence[str], n: int, sampling: SamplingParams) -> list[Rollout]:
        """Sample `n` completions for each prompt.

        Returns ``len(prompts) * n`` rollouts ordered prompt-major: all n samples of prompt 0
        (sample_index 0..n-1), then prompt 1, ... With ``sampling.seed`` set the result is
        reproducible.
        """
        ...
