"""The R1 readable output pattern and the cold-start data builders (R1 §2.3.1; algorithms.md §10.3).

R1's cold-start data writes every response as ``|special_token|<reasoning_process>|special_token|
<summary>``: the reasoning between two markers, then a summary for the reader. Here the markers
are the reasoning tags (``<think>``/``</think>`` by default; any model-specific special tokens can
be configured), so the `format_r1` reward and the `language` reward read the same layout, and the
summary ends with ``\\boxed{answer}`` so the accuracy verifiers grade it.

Builders of cold-start SFT rows (chat messages, one user and one assistant turn each):
- `cold_start_from_seed`: a seed file of hand-written long-CoT rows (``question``, ``reasoning``,
  ``answer`` and optional ``summary``); `write_synthetic_seed` writes such a file for r1lab's
  synthetic tasks, from each problem's worked steps plus a verification pass (the analog of the
  paper's "detailed answers with reflection and verification").
- `cold_start_from_r1_zero`: correct R1-Zero-format outputs (``<think> .. </think> <answer> ..
  </answer>``, e.g. a rejection-sampling dataset of an R1-Zero model), reformatted into the
  readable pattern and filtered (`data.filters`) - the paper's "readable R1-Zero outputs".
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1lab.data.filters import Candidate, FilterSpec, first_failure
from r1lab.data.loaders import read_rows
from r1lab.errors import DataError
from r1lab.rewards.format import is_r1_zero_format, r1_readable_parts
from r1lab.types import Example

_R1_ZERO_PARTS = re.compile(r"<think>(.*?)</think>\s*<answer>(.*?)</answer>", re.DOTALL)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class ReadableFormat:
    open_tag: str = "<think>"
    close_tag: str = "</think>"
    summary: str = "The answer is \\boxed{{{answer}}}."  # {answer}: the final answer


def render_readable(reasoning: str, summary: str, fmt: ReadableFormat = ReadableFormat()) -> str:
    """``<think>\\nreasoning\\n</think>\\nsummary``: the R1 output pattern."""
    if not reasoning.strip() or not summary.strip():
        raise DataError("a readable response needs a non-empty reasoning and summary")
    return f"{fmt.open_tag}\n{reasoning.strip()}\n{fmt.close_tag}\n{summary.strip()}"


def split_readable(text: str, fmt: ReadableFormat = ReadableFormat()) -> tuple[str, str] | None:
    """``(reasoning, summary)`` of a readable response, None when it is not one."""
    return r1_readable_parts(text, fmt.open_tag, fmt.close_tag)


def reasoning_and_summary(text: str, open_tag: str = "<think>", close_tag: str = "</think>"):
    """Best-effort split for filtering any completion: the reasoning block (the whole text when
    there is none) and what follows it."""
    start = text.find(open_tag)
    body = text[start + len(open_tag) :] if start >= 0 else text
    reasoning, sep, rest = body.partition(close_tag)
    return (reasoning, rest) if sep else (body, "")


def summary_for(answer: str, fmt: ReadableFormat = ReadableFormat()) -> str:
    return fmt.summary.format(answer=answer.strip())


def chat_row(question: str, response: str, **extra: Any) -> dict[str, Any]:
    """An SFT row: one user turn, one assistant turn, plus bookkeeping columns."""
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": response},
        ],
        **extra,
    }


# --- (a) seed file -------------------------------------------------------------------------


def cold_start_from_seed(
    path: str | Path, fmt: ReadableFormat = ReadableFormat()
) -> list[dict[str, Any]]:
    """Readable SFT rows from a seed file (``question``, ``reasoning``, ``answer`` [, ``summary``])."""
    out = []
    for i, row in read_rows(path):
        where = f"{path}:{i}"
        if not isinstance(row, Mapping):
            raise DataError(f"{where}: expected a JSON object")
        missing = [k for k in ("question", "reasoning", "answer") if not row.get(k)]
        if missing:
            raise DataError(
                f"{where}: seed rows need question, reasoning, answer; missing {missing}"
            )
        summary = row.get("summary") or summary_for(str(row["answer"]), fmt)
        response = render_readable(str(row["reasoning"]), summary, fmt)
        extra = {k: row[k] for k in ("id", "answer", "verifier", "task") if k in row}
        out.append(chat_row(str(row["question"]), response, source="seed", **extra))
    if not out:
        raise DataError(f"{path}: the seed file has no rows")
    return out


def long_cot(ex: Example, rng: random.Random) -> str:
    """A worked solution with a verification pass for a synthetic task example (kept short: the
    tiny model pays for every token it generates)."""
    steps = list(ex.meta.get("steps") or [])
    if not steps:
        raise DataError(f"example {ex.id} has no worked steps to write a reasoning from")
    lines = [rng.choice(["Step by step.", "One step at a time.", "Let me compute."])]
    lines += [f"{s}." for s in steps]
    checks = []
    for s in steps:
        lhs, rhs = s.split(" = ")
        a, op, b = lhs.split(" ")
        inverse = {"+": f"{rhs} - {b}", "-": f"{rhs} + {b}", "*": f"{b} * {a}"}[op]
        checks.append(f"{inverse} = {a if op != '*' else rhs}")
    lines.append("Check: " + ", ".join(checks) + ". Right.")
    final = ex.meta["solution"] if ex.task == "countdown" else ex.answer
    lines.append(f"So the answer is {final}.")
    return "\n".join(lines)


def write_synthetic_seed(examples: Sequence[Example], path: Path, seed: int = 0) -> Path:
    """Write a seed file of long-CoT rows for synthetic-task examples (deterministic in seed)."""
    rng = random.Random(f"seed-cot:{seed}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for ex in examples:
            answer = ex.meta["solution"] if ex.task == "countdown" else ex.answer
            row = {**ex.as_row(), "reasoning": long_cot(ex, rng), "answer": answer}
            row.pop("steps", None)
            f.write(json.dumps(row) + "\n")
    return path


# --- (b) R1-Zero outputs ---------------------------------------------------------------------


def reformat_r1_zero(text: str, fmt: ReadableFormat = ReadableFormat()) -> str | None:
    """An R1-Zero-format completion rewritten in the readable pattern (one sentence per line in
    the reasoning, a summary with the boxed answer); None when ``text`` is not R1-Zero format."""
    if not is_r1_zero_format(text):
        return None
    m = _R1_ZERO_PARTS.search(text)
    reasoning, answer = m.group(1).strip(), m.group(2).strip()
    lines = "\n".join(s.strip() for s in _SENTENCE.split(reasoning) if s.strip())
    return render_readable(lines, summary_for(answer, fmt), fmt)


def cold_start_from_r1_zero(
    rows: Iterable[Mapping[str, Any]],
    filters: Sequence[FilterSpec] = (),
    fmt: ReadableFormat = ReadableFormat(),
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Readable SFT rows from correct R1-Zero outputs (rows with ``question`` and ``completion``,
    e.g. a rejection-sampling dataset); returns the rows and drop counts by reason."""
    out, dropped = [], {"not_r1_zero_format": 0}
    for row in rows:
        response = reformat_r1_zero(str(row["completion"]), fmt)
        if response is None:
            dropped["not_r1_zero_format"] += 1
            continue
        reasoning, summary = split_readable(response, fmt)
        failed = first_failure(Candidate(response, reasoning, summary), filters)
        if failed is not None:
            dropped[failed[0]] = dropped.get(failed[0], 0) + 1
            continue
        extra = {k: row[k] for k in ("id", "answer", "verifier", "task") if k in row}
        out.append(chat_row(str(row["question"]), response, source="r1_zero", **extra))
    return out, dropped
