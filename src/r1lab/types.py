"""Plain data records passed between stages. Pure Python: no torch here.

Shape vocabulary (see docs/style.md): B sequences (= prompts x G), G group size, T response tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    """How a `Generator` samples. ``top_k = 0`` and ``top_p = 1.0`` disable those filters."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 128
    min_new_tokens: int = 0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass
class Rollout:
    """One sampled completion of one prompt.

    ``completion_ids`` has T tokens (the stop string or EOS included when generation stopped on
    it); ``logprobs`` has T floats, each the log-probability of that token under the *sampling*
    distribution (after temperature / top-k / top-p), which is what the PPO ratio needs.
    """

    prompt_index: int
    sample_index: int
    prompt: str
    prompt_ids: list[int]
    completion_ids: list[int]
    text: str
    logprobs: list[float]
    finish_reason: FinishReason

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


@dataclass(frozen=True)
class Example:
    """One task row: a question with its gold answer and the name of the verifier that checks it.

    ``meta`` keeps task-specific fields (the Countdown numbers, the difficulty, the source file).
    """

    id: str
    question: str
    answer: str
    verifier: str
    task: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "verifier": self.verifier,
            "task": self.task,
            **self.meta,
        }
