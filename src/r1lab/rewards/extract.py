"""Answer extraction: pull the final answer out of a completion (a string; no equivalence here).

Policies, chosen per task (a row's ``extractor`` field), per recipe (a verifier's ``extractor``
param) or on the command line (``r1lab grade --extractor``). Single extractors:

| name              | takes                                                                      |
|-------------------|----------------------------------------------------------------------------|
| `answer_tag`      | the last ``<answer>...</answer>``                                          |
| `boxed`           | the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces; ``\\boxed 5``)  |
| `boxed_all`       | every box, joined with ", " (multi-answer tasks: "x = 2 or x = 5")          |
| `answer_or_boxed` | the tag, or the box inside it; else the last box (the strict R1-Zero form)  |
| `math_verify`     | math-verify's own LaTeX + expression extraction over the text (open-r1's    |
|                   | configs), run in the math worker pool under its time limit                  |
| `final_answer_is` | the text after the last "the (final) answer/number/result is"              |
| `gsm8k`           | the text after the last ``####`` (GSM8K's own solution format)             |
| `answer_line`     | the last line that starts with ``A:`` / ``Answer:`` (few-shot Q/A format)   |
| `last_number`     | the last number in the text                                                |

Chains try their stages in order and keep the first answer found (`extract_named` says which):

| chain     | stages                                                                              |
|-----------|-------------------------------------------------------------------------------------|
| `default` | answer_or_boxed, gsm8k, math_verify, answer_line, final_answer_is (grade, eval)   |
| `auto`    | answer_or_boxed, final_answer_is                                                    |

Rules every policy follows (docs/grading.md):

- A box that is opened but never closed (a completion cut at the token limit) extracts nothing:
  an earlier, possibly tentative box is *not* used in its place.
- When the completion opens an ``<answer>`` tag, only what follows the last ``<answer>`` (up to
  ``</answer>`` when it is closed) is searched: an unclosed tag never falls back to a box or a
  number inside ``<think>``. A blank answer block is no answer.
"""

from __future__ import annotations

import re

from r1lab.registry import Registry

EXTRACTORS: Registry = Registry("answer extractor")
CHAINS: dict[str, tuple[str, ...]] = {}
MATH_VERIFY = "math_verify"
DEFAULT_POLICY = "default"

_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"
_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BARE_BOX_ARG = re.compile(r"[ \t]+([^\s{$]+)")
_ANSWER_IS = re.compile(
    r"(?:final\s+)?(?:answer|number|result)\s+is\s*:?\s*(.+?)(?:\.\s|\.$|\n|$)", re.IGNORECASE
)
_HASHES = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_ANSWER_LINE = re.compile(r"^[ \t]*(?:A|Answer)[ \t]*:[ \t]*(\S.*?)\s*$", re.MULTILINE)
_NUMBER_THEN_WORDS = re.compile(r"([$€£]?\s*-?\d[\d,]*(?:\.\d+)?)\s+[A-Za-z][A-Za-z\s.]*$")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_TAG_AWARE = {"answer_tag", "answer_or_boxed"}


def answer_region(text: str) -> str:
    """What follows the last ``<answer>`` (to ``</answer>`` when closed); the text if none."""
    at = text.rfind(_ANSWER_OPEN)
    if at < 0:
        return text
    region = text[at + len(_ANSWER_OPEN) :]
    return region.split(_ANSWER_CLOSE, 1)[0]


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


def _nonblank(s: str | None) -> str | None:
    return s if s is not None and s.strip() else None


@EXTRACTORS.register("answer_tag")
def extract_answer_tag(text: str) -> str | None:
    """The last answer block when it is closed and not blank."""
    at = text.rfind(_ANSWER_OPEN)
    if at < 0 or _ANSWER_CLOSE not in text[at:]:
        return None
    return _nonblank(answer_region(text).strip())


@EXTRACTORS.register("boxed")
def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` with balanced nested braces (None if unbalanced)."""
    starts = [m.end() for m in _BOX.finditer(text)]
    return _nonblank(_box_content(text, starts[-1])) if starts else None


@EXTRACTORS.register("boxed_all")
def extract_boxed_all(text: str) -> str | None:
    """Every balanced box in order, joined with ", " (None if there is none)."""
    found = [_box_content(text, m.end()) for m in _BOX.finditer(text)]
    found = [f for f in found if f]
    return ", ".join(found) if found else None


@EXTRACTORS.register("answer_or_boxed")
def extract_answer_or_boxed(text: str) -> str | None:
    """The box inside the last answer block, else that block; no tag at all: the last box.

    An unclosed last ``<answer>`` yields only a box written after it (never one inside
    ``<think>``)."""
    if _ANSWER_OPEN not in text:
        return extract_boxed(text)
    region = answer_region(text)
    inner = extract_boxed(region)
    return inner if inner is not None else extract_answer_tag(text)


@EXTRACTORS.register("final_answer_is")
def extract_final_answer_is(text: str) -> str | None:
    found = _ANSWER_IS.findall(text)
    return _nonblank(found[-1].strip()) if found else None


@EXTRACTORS.register("gsm8k")
def extract_gsm8k(text: str) -> str | None:
    """The last ``####`` line; a number followed by words keeps the number (``18 dollars``)."""
    found = _HASHES.findall(text)
    if not found:
        return None
    unit = _NUMBER_THEN_WORDS.match(found[-1])
    return unit.group(1) if unit else found[-1]


@EXTRACTORS.register("answer_line")
def extract_answer_line(text: str) -> str | None:
    found = _ANSWER_LINE.findall(text)
    return found[-1] if found else None


@EXTRACTORS.register("last_number")
def extract_last_number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    return found[-1] if found else None


@EXTRACTORS.register(MATH_VERIFY)
def extract_math_verify(text: str) -> str | None:
    """math-verify's extraction over the whole text, in the math worker pool (time-limited).

    Returns the string math-verify extracted (its normalized form: ``7,425,000`` -> ``7425000``).
    The ``math`` verifier does not call this: it extracts and verifies in one worker task.
    """
    from r1lab.rewards.math import DEFAULT_TIMEOUT_S, math_pool  # the pool lives with `math`

    outcome = math_pool().run([("extract", text, "")], DEFAULT_TIMEOUT_S)[0]
    return _nonblank(outcome.value) if outcome.ok else None


def register_chain(name: str, stages: tuple[str, ...]) -> None:
    """A policy that tries ``stages`` (extractor names) in order."""

    def chain(text: str) -> str | None:
        return extract_named(text, name)[0]

    chain.stages = stages  # type: ignore[attr-defined]
    EXTRACTORS.add(name, chain)
    CHAINS[name] = stages


# "####" before math-verify: it marks GSM8K's final answer as explicitly as a box does, while
# math-verify prefers any number near the word "answer" ("add it to the answer from the
# previous step: ... = 6.00 #### 6"): 4 of GSM8K's 1,319 gold solutions misread otherwise.
register_chain(
    DEFAULT_POLICY, ("answer_or_boxed", "gsm8k", MATH_VERIFY, "answer_line", "final_answer_is")
)
register_chain("auto", ("answer_or_boxed", "final_answer_is"))


def stages_of(policy: str) -> tuple[str, ...]:
    """The extractor names a policy tries, in order (one name for a single extractor)."""
    EXTRACTORS.get(policy)  # unknown names fail here, listing the known ones
    return CHAINS.get(policy, (policy,))


def run_stages(text: str, stages: tuple[str, ...]) -> tuple[str | None, str | None]:
    """``(answer, extractor name)`` of the first stage that finds one; ``(None, None)`` if none.

    Stages other than the tag-aware ones read only `answer_region` (module doc)."""
    region = answer_region(text)
    for name in stages:
        found = EXTRACTORS.get(name)(text if name in _TAG_AWARE else region)
        if found is not None:
            return found, name
    return None, None


def extract_named(text: str, policy: str = "answer_or_boxed") -> tuple[str | None, str | None]:
    """The answer and the name of the extractor (a chain's stage) that found it."""
    return run_stages(text, stages_of(policy))


def extract(text: str, policy: str = "answer_or_boxed") -> str | None:
    return extract_named(text, policy)[0]
