"""Answer extraction: pull the final answer out of a completion.

Policies (chosen per task or recipe): ``answer_tag`` (last ``<answer>...</answer>``), ``boxed``
(last ``\\boxed{}`` / ``\\fbox{}``, nested braces allowed), ``answer_or_boxed`` (tag first, then
box; the R1-Zero default), ``final_answer_is`` ("the (final) answer is ..."), ``last_number``.
"""

from __future__ import annotations

import re

from r1lab.registry import Registry

EXTRACTORS: Registry = Registry("answer extractor")

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_BOX_START = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_IS = re.compile(r"(?:final\s+)?answer\s+is\s*:?\s*(.+?)(?:\.\s|\.$|\n|$)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


@EXTRACTORS.register("answer_tag")
def extract_answer_tag(text: str) -> str | None:
    found = _ANSWER_TAG.findall(text)
    return found[-1].strip() if found else None


@EXTRACTORS.register("boxed")
def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` with balanced nested braces (None if unbalanced)."""
    starts = [m.end() for m in _BOX_START.finditer(text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i].strip()
    return None


@EXTRACTORS.register("answer_or_boxed")
def extract_answer_or_boxed(text: str) -> str | None:
    tagged = extract_answer_tag(text)
    if tagged is None:
        return extract_boxed(text)
    inner = extract_boxed(tagged)
    return inner if inner is not None else tagged


@EXTRACTORS.register("final_answer_is")
def extract_final_answer_is(text: str) -> str | None:
    found = _ANSWER_IS.findall(text)
    return found[-1].strip() if found else None


@EXTRACTORS.register("last_number")
def extract_last_number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    return found[-1] if found else None


def extract(text: str, policy: str = "answer_or_boxed") -> str | None:
    return EXTRACTORS.get(policy)(text)
