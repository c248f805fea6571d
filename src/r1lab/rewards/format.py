"""Format rewards (algorithms.md §10.2, §12.3): they check the shape of a completion, never its answer.

| name        | 1.0 when                                                                         |
|-------------|----------------------------------------------------------------------------------|
| `format`    | R1-Zero (paper Table 1): one ``<think>...</think>`` then one ``<answer>...</answer>``, |
|             | nothing else around them (whitespace allowed), no stray tags inside, neither    |
|             | block blank (whitespace-only reasoning or answer earns nothing)                  |
| `format_r1` | R1 readable: one reasoning block, then a non-empty summary (the paper's cold-start |
|             | output pattern: special token, reasoning, special token, summary; §10.3)        |
| `tag_count` | partial credit, open-r1 ``tag_count_reward``: +0.25 for each of ``<think>\\n``,   |
|             | ``\\n</think>\\n``, ``\\n<answer>\\n``, ``\\n</answer>`` occurring exactly once     |

The R1 model's chat template opens the reasoning block in the prompt (the response is forced to
start with ``<think>\\n``); ``format_r1(think_in_prompt=True)`` then expects no opening tag in the
completion. Tags are params, so a model with special reasoning tokens can use its own.
"""

from __future__ import annotations

import re

from r1lab.rewards.base import REWARDS, Completion, RewardResult

_R1_ZERO = re.compile(r"^\s*<think>(.+?)</think>\s*<answer>(.+?)</answer>\s*$", re.DOTALL)
_R1_ZERO_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_OPEN_R1_TAGS = ("<think>\n", "\n</think>\n", "\n<answer>\n", "\n</answer>")


def is_r1_zero_format(text: str) -> bool:
    m = _R1_ZERO.match(text)
    if m is None:
        return False
    think, answer = m.group(1), m.group(2)
    if not think.strip() or not answer.strip():
        return False
    return not any(t in think or t in answer for t in _R1_ZERO_TAGS)


@REWARDS.register("format")
def format_reward(c: Completion) -> RewardResult:
    """1.0 iff the completion is exactly one think block followed by one answer block."""
    return RewardResult(float(is_r1_zero_format(c.text)))


def r1_readable_parts(
    text: str,
    open_tag: str = "<think>",
    close_tag: str = "</think>",
    think_in_prompt: bool = False,
) -> tuple[str, str] | None:
    """``(reasoning, summary)`` when ``text`` is one reasoning block then a summary, else None.

    The reasoning and the summary must both be non-blank; neither may contain a tag.
    """
    body = text.lstrip()
    if not think_in_prompt:
        if not body.startswith(open_tag):
            return None
        body = body[len(open_tag) :]
    reasoning, sep, summary = body.partition(close_tag)
    if not sep or not reasoning.strip() or not summary.strip():
        return None
    if any(t in part for t in (open_tag, close_tag) for part in (reasoning, summary)):
        return None
    return reasoning.strip(), summary.strip()


@REWARDS.register("format_r1")
def format_r1_reward(
    c: Completion,
    open_tag: str = "<think>",
    close_tag: str = "</think>",
    think_in_prompt: bool = False,
    require_boxed: bool = False,
) -> RewardResult:
    """1.0 iff one reasoning block, then a non-empty summary (holding a ``\\boxed{}`` if asked)."""
    parts = r1_readable_parts(c.text, open_tag, close_tag, think_in_prompt)
    if parts is None:
        return RewardResult(0.0, info={"reason": "not one reasoning block + summary"})
    if require_boxed and "\\boxed" not in parts[1]:
        return RewardResult(0.0, info={"reason": "summary has no \\boxed{} answer"})
    return RewardResult(1.0)


def tag_count_score(text: str) -> float:
    """open-r1 semantics: 0.25 per tag string that occurs exactly once (max 1.0)."""
    return 0.25 * sum(text.count(tag) == 1 for tag in _OPEN_R1_TAGS)


@REWARDS.register("tag_count")
def tag_count_reward(c: Completion) -> RewardResult:
    return RewardResult(tag_count_score(c.text))
