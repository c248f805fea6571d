"""The `Generator` protocol every rollout engine implements (HF on CPU/GPU, vLLM, endpoints), and
the `Learner` protocol of the trainer every stage uses (`engines.hf_learner.Learner`).

A generator turns prompts into `Rollout`s: token ids, text, per-token log-probs under the sampling
distribution and a finish reason. One contract test suite (tests/engines/) runs on every engine.
A learner takes optimizer steps on batches that say how they are run: ``batch.mask_BT`` (what
the loss normalizers count), ``batch.micro_batches(learner)``, ``mb.to(device)`` and
``mb.forward(module, learner) -> (out, extra)``; the loss is ``loss_fn(out, mb, *, num_seqs,
num_tokens, **extra) -> (loss, metrics)``, an `algo/` function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class Learner(Protocol):
    def logprobs(self, model, batch) -> Any: ...  # (B, T) under `model`, no gradient

    def update(self, batch, loss_fn) -> dict[str, float]: ...  # one optimizer step: metrics

    def state(self) -> dict[str, Any]: ...  # model, optimizer, skipped steps (for a resume)

    def load_state(self, state: dict[str, Any]) -> None: ...
