"""Answer extraction: pull the final answer out of a completion (a string; no equivalence here).

Policies, chosen per task (a row's ``extractor`` field) or per recipe (a verifier's ``extractor``
param):

| policy            | takes                                                                      |
|-------------------|----------------------------------------------------------------------------|
| `answer_tag`      | the last ``<answer>...</answer>``                                          |
| `boxed`           | the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces; ``\\boxed 5``)  |
| `boxed_all`       | every box, joined with ", " (multi-answer tasks: "x = 2 or x = 5")          |
| `answer_or_boxed` | the tag, or the box inside it; else the last box (the R1-Zero default)      |
| `final_answer_is` | the text after the last "the (final) answer is"                            |
| `auto`            | `answer_or_boxed`, then `final_answer_is`                                   |
| `gsm8k`           | the text after the last ``####`` (GSM8K's own solution format)             |
| `last_number`     | the last number in the text                                                |

A box that is opened but never closed (a completion cut at the token limit) extracts nothing:
an earlier, possibly tentative box is *not* used in its place.
"""

from __future__ import annotations

import re

from r1lab.registry import Registry

EXTRACTORS: Registry = Registry("answer extractor")

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BARE_BOX_ARG = re.compile(r"[ \t]+([^\s{$]+)")
_ANSWER_IS = re.compile(r"(?:final\s+)?answer\s+is\s*:?\s*(.+?)(?:\.\s|\.$|\n|$)", re.IGNORECASE)
_HASHES = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def _box_content(text: str, at: int) -> str | None:
    """Argument of the box command ending at ``at``: ``{...}`` (balanced) or a bare ``\\boxed 5``."""
    i = at
    while i < len(text) and text[i] in " \t":
        i += 1
    if i < len(text) and text[i] == "{":
        depth = 0
        for j in range(i, len(text)):
            if text[j] == "{" and text[j - 1] != "\\":
                depth += 1
            elif text[j] == "}" and text[j - 1] != "\\":
                depth -= 1
                if depth == 0:
                    return text[i + 1 : j].strip()
        return None
    bare = _BARE_BOX_ARG.match(text, at)
    return bare.group(1) if bare else None


@EXTRACTORS.register("answer_tag")
def extract_answer_tag(text: str) -> str | None:
    found = _ANSWER_TAG.findall(text)
    return found[-1].strip() if found else None


@EXTRACTORS.register("boxed")
def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` with balanced nested braces (None if unbalanced)."""
    starts = [m.end() for m in _BOX.finditer(text)]
    return _box_content(text, starts[-1]) if starts else None


@EXTRACTORS.register("boxed_all")
def extract_boxed_all(text: str) -> str | None:
    """Every balanced box in order, joined with ", " (None if there is none)."""
    found = [_box_content(text, m.end()) for m in _BOX.finditer(text)]
    found = [f for f in found if f]
    return ", ".join(found) if found else None


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


@EXTRACTORS.register("auto")
def extract_auto(text: str) -> str | None:
    found = extract_answer_or_boxed(text)
    return found if found is not None else extract_final_answer_is(text)


@EXTRACTORS.register("gsm8k")
def extract_gsm8k(text: str) -> str | None:
    found = _HASHES.findall(text)
    return found[-1] if found else None


@EXTRACTORS.register("last_number")
def extract_last_number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    return found[-1] if found else None


def extract(text: str, policy: str = "answer_or_boxed") -> str | None:
    return EXTRACTORS.get(policy)(text)
