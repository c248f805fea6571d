"""Reward-model components for general prompts (R1 §2.3.4; algorithms.md §10.3, stage 4).

R1's RL for all scenarios keeps rule-based rewards for reasoning prompts and scores general
prompts with preference reward models: **helpfulness on the final summary only** (so the
assessment stresses the utility of the response and leaves the reasoning alone) and
**harmlessness on the whole response**, reasoning and summary.

- ``rm_helpful``: the RM score of (question, summary) on rows graded by an RM.
- ``rm_harmless``: the RM score of (question, whole response) on those rows.
- ``reasoning_accuracy``: the ``accuracy`` verdicts (list ``accuracy`` earlier in the spec, weight 0
  if only logged) on rows NOT graded by an RM and 0 on RM rows, so a general prompt is not also
  graded by its rule (a constant within a GRPO group, which moves no advantage).

Which rows an RM grades: those whose ``verifier`` is in ``verifiers`` (default ``[general]``); the
others score 0 with ``info["skipped"]``. Params of the RM components: ``model`` (an HF
sequence-classification directory, num_labels 1), ``max_len``, ``batch_size``, ``open_tag`` and
``close_tag`` (the reasoning block). The summary is the text after ``close_tag``; a response with no
reasoning block is all summary; one whose block never closes has an empty summary.

No torch here: the scorer (`r1lab.engines.reward_model`) is imported on first call and cached
there per model directory, and the components run in the trainer process (never in the math
worker pool). A failing RM scores the graded rows 0 with the error recorded; it never raises.
"""

from __future__ import annotations

from collections.abc import Sequence

from r1lab.errors import ConfigError
from r1lab.rewards.base import (
    REWARDS,
    BatchContext,
    Completion,
    RewardResult,
    batch_form,
    needs_component,
)

RM_VERIFIERS = ("general",)
_SKIPPED = RewardResult(0.0, info={"skipped": True})


def summary_of(text: str, open_tag: str = "<think>", close_tag: str = "</think>") -> str:
    """The part of a response after its reasoning block (all of it when it has none)."""
    if close_tag in text:
        return text.split(close_tag, 1)[1].strip()
    return "" if open_tag in text else text.strip()


def _scorer(model: str, max_len: int, batch_size: int):
    from r1lab.engines.reward_model import load_scorer

    return load_scorer(model, max_len=max_len, batch_size=batch_size)


def _graded(c: Completion, verifiers: Sequence[str]) -> bool:
    return str(c.row.get("verifier", "")) in tuple(verifiers)


def _rm_batch(
    completions: Sequence[Completion],
    part: str,
    *,
    model: str = "",
    max_len: int = 512,
    batch_size: int = 32,
    verifiers: Sequence[str] = RM_VERIFIERS,
    open_tag: str = "<think>",
    close_tag: str = "</think>",
) -> list[RewardResult]:
    """Shapes: completions (B,) -> (B,): RM scores on graded rows, skipped 0 elsewhere."""
    out = [_SKIPPED] * len(completions)
    idx = [i for i, c in enumerate(completions) if _graded(c, verifiers)]
    if not idx:
        return out
    texts = [
        summary_of(completions[i].text, open_tag, close_tag)
        if part == "summary"
        else completions[i].text
        for i in idx
    ]
    try:
        if not model:
            raise ValueError("no reward model: set the component's params.model to an RM directory")
        scorer = _scorer(model, max_len, batch_size)
        scores = scorer.score([str(completions[i].row.get("question", "")) for i in idx], texts)
    except Exception as exc:  # rewards never raise to the trainer
        err = RewardResult(0.0, error=f"{type(exc).__name__}: {exc}")
        for i in idx:
            out[i] = err
        return out
    for i, text, s in zip(idx, texts, scores, strict=True):
        out[i] = RewardResult(float(s), extracted=text, info={"part": part})
    return out


@REWARDS.register("rm_helpful")
def rm_helpful(c: Completion, **params) -> RewardResult:
    """Helpfulness: the RM score of the summary only."""
    return _rm_batch([c], "summary", **params)[0]


@batch_form(rm_helpful)
def rm_helpful_batch(completions, ctx: BatchContext, **params) -> list[RewardResult]:
    return _rm_batch(completions, "summary", **params)


@REWARDS.register("rm_harmless")
def rm_harmless(c: Completion, **params) -> RewardResult:
    """Harmlessness: the RM score of the whole response (reasoning + summary)."""
    return _rm_batch([c], "whole", **params)[0]


@batch_form(rm_harmless)
def rm_harmless_batch(completions, ctx: BatchContext, **params) -> list[RewardResult]:
    return _rm_batch(completions, "whole", **params)


@needs_component("correct_from", "accuracy")
@REWARDS.register("reasoning_accuracy")
def reasoning_accuracy(c: Completion, **params) -> RewardResult:
    raise ConfigError(
        "reasoning_accuracy reads the accuracy verdicts of the step: use score_completions"
    )


@batch_form(reasoning_accuracy)
def reasoning_accuracy_batch(
    completions: Sequence[Completion],
    ctx: BatchContext,
    correct_from: str = "accuracy",
    verifiers: Sequence[str] = RM_VERIFIERS,
) -> list[RewardResult]:
    """Shapes: completions (B,), ctx.results[correct_from] (B,) -> (B,)."""
    verdicts = ctx.results[correct_from]
    return [
        _SKIPPED if _graded(c, verifiers) else v for c, v in zip(completions, verdicts, strict=True)
    ]
