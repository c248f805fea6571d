"""The worker side of the ``math`` verifier: math-verify's parse + verify, one task at a time.

Imported only inside pool workers (`r1lab.rewards.pool`), never by the trainer, so the trainer
does not load sympy. math-verify's own timeouts use ``signal.alarm``, which fails outside the
main thread; ``parsing_timeout=None`` / ``timeout_seconds=None`` (or any value <= 0) disable them.
We pass None: the hard limit is the pool's, which kills the worker from outside.

Tasks (`handle`):
- ``(gold, answer)``: is the extracted answer equivalent to the gold answer;
- ``("text", gold, text)``: math-verify's own extraction over the whole text (LaTeX, then plain
  expressions, as open-r1 configures them), then verify; ``extracted`` None when it finds nothing;
- ``("extract", text, "")``: only the extraction, as a string.

A pair has two elements, the tagged tasks three, so no gold string can be taken for a tag.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

import math_verify.parser as _mv_parser
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from math_verify.parser import extract_target_from_pred, get_extraction_regexes

from r1lab.rewards.answer_text import prepare_text, rewrite_mixed_numbers

# math-verify warns once that its timeout is disabled; the pool enforces the limit instead.
logging.getLogger("math_verify").setLevel(logging.ERROR)

MATH_VERIFY_NO_TIMEOUT = None
_found: list[str] = []  # the text of the last match math-verify parsed (see _recording_match)
_mv_extract_match = _mv_parser.extract_match


def _recording_match(match, target_type):
    """math-verify's `extract_match`, remembering the text of a match that parsed, so the
    extracted answer shown is the one graded (not the first candidate that failed to parse)."""
    value, text = _mv_extract_match(match, target_type)
    if value is not None:
        _found[:] = [text]
    return value, text


_mv_parser.extract_match = _recording_match  # looked up at call time by extract_target_from_pred
# open-r1's accuracy reward: LaTeX (boxed first, as a final answer should be) then expressions.
TEXT_CONFIGS = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())
_MATH_SPAN = re.compile(
    r"\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|(?<![\\\d])\$[^$\n]+?(?<!\\)\$", re.DOTALL
)
_MARKUP = re.compile(r"\\[A-Za-z]+|[_^{}]")
_GOLD_MARKERS = re.compile(r"(?<!\\)\$|\\boxed|\\\(|\\\[")  # an escaped \$ is a dollar sign


@lru_cache(maxsize=16384)
def parse_answer(answer: str) -> list:
    """math-verify's parse of one bare answer (a LaTeX or plain string, no surrounding text).

    Cached: gold answers repeat across a group's G samples and across epochs, and short model
    answers ("2", "\\frac{1}{2}") repeat across problems. Parsed sympy objects are immutable.
    """
    answer = rewrite_mixed_numbers(answer)
    return parse("$" + answer + "$", parsing_timeout=MATH_VERIFY_NO_TIMEOUT)


class _OutsideLatex:
    """One of math-verify's expression regexes, minus matches inside a LaTeX span.

    A number inside ``$..$`` / ``\\[..\\]`` / ``\\(..\\)`` that holds LaTeX markup belongs to
    that LaTeX: when the LaTeX extraction cannot parse the span, the span supplies no answer,
    rather than its ``0`` in ``\\sum_{k=0}^n`` (the rule of Math-Verify's test_failed_latex_span).
    Spans without markup (``$18 a day, $``: dollar amounts) stay visible.
    """

    def __init__(self, pattern: re.Pattern) -> None:
        self.pattern = pattern

    def finditer(self, text: str):
        spans = latex_spans(text)
        for m in self.pattern.finditer(text):
            if not any(a < m.end() - 1 < b for a, b in spans):  # where the match ends
                yield m


@lru_cache(maxsize=64)
def latex_spans(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(
        (m.start(), m.end()) for m in _MATH_SPAN.finditer(text) if _MARKUP.search(m.group())
    )


@lru_cache(maxsize=1)
def _text_regexes() -> list:
    out = []
    for patterns, target in get_extraction_regexes(TEXT_CONFIGS):
        if isinstance(target, ExprExtractionConfig):
            patterns = [(_OutsideLatex(p), priority) for p, priority in patterns]
        out.append((patterns, target))
    return out


@lru_cache(maxsize=4096)
def parse_text(text: str) -> list:
    """math-verify's extraction + parse over a whole text (``[]`` when it finds nothing), after
    `answer_text.prepare_text`; its expression regexes skip LaTeX spans (`_OutsideLatex`)."""
    _found.clear()
    try:
        found = extract_target_from_pred(
            prepare_text(text), _text_regexes(), fallback_mode="first_match"
        )
    except Exception:  # as math-verify's parse: an extraction error is no answer
        return []
    if found and not isinstance(found[0], str) and _found:
        return [found[0], _found[0]]
    return found


@lru_cache(maxsize=16384)
def parse_gold(gold: str) -> list:
    """A gold answer: bare LaTeX as in MATH (``\\frac{1}{2}``) is read whole; a gold that carries
    its own delimiters or a box (``$9$``, a worked solution ending in ``\\boxed{2}``) and a gold
    bare parsing cannot read (``7,425,000``) go through math-verify's text extraction."""
    if not _GOLD_MARKERS.search(gold):
        parsed = parse_answer(gold)
        if parsed:
            return parsed
    return parse_text(gold)


def _gold(gold: str) -> list:
    parsed = parse_gold(gold)
    if not parsed:
        raise ValueError(f"math-verify cannot parse the gold answer {gold[:200]!r}")
    return parsed


def _verify(gold_parsed: list, parsed: list) -> bool:
    return bool(verify(gold_parsed, parsed, timeout_seconds=MATH_VERIFY_NO_TIMEOUT))


def check_pair(pair: tuple[str, str]) -> tuple[bool, str | None]:
    """``(equivalent, note)``: note says why a non-equivalent answer could not even be parsed."""
    gold, answer = pair
    gold_parsed = _gold(gold)
    parsed = parse_answer(answer)
    if not parsed:
        return False, "math-verify cannot parse the answer"
    return _verify(gold_parsed, parsed), None


def extracted_string(parsed: list) -> str | None:
    """The text math-verify extracted (the last element of its parse, a string), or None."""
    return parsed[-1] if parsed and isinstance(parsed[-1], str) else None


def check_text(gold: str, text: str) -> tuple[bool, str | None, str | None]:
    """``(equivalent, note, extracted)`` with math-verify's own extraction over ``text``."""
    gold_parsed = _gold(gold)
    parsed = parse_text(text)
    if not parsed:
        return False, None, None
    return _verify(gold_parsed, parsed), None, extracted_string(parsed)


def handle(task: tuple):
    """The pool handler: dispatch on the task's shape (module doc)."""
    if len(task) == 2:
        return check_pair(task)
    tag, first, second = task
    if tag == "text":
        return check_text(first, second)
    if tag == "extract":
        return extracted_string(parse_text(first))
    raise ValueError(f"unknown math task {tag!r}")


# Warm up at import (before the worker reports ready), so the first real check is not charged
# for sympy's and the LaTeX grammar's lazy initialisation.
check_pair(("\\frac{1}{2}", "0.5"))
check_text("9", "Answer $ 9 $")
