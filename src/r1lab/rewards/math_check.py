"""The worker side of the ``math`` verifier: math-verify's parse + verify on one (gold, answer).

Imported only inside pool workers (`r1lab.rewards.pool`), never by the trainer, so the trainer
does not load sympy. math-verify's own timeouts use ``signal.alarm``, which fails outside the
main thread; ``parsing_timeout=None`` / ``timeout_seconds=None`` (or any value <= 0) disable them.
We pass None: the hard limit is the pool's, which kills the worker from outside.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from math_verify import parse, verify

# math-verify warns once that its timeout is disabled; the pool enforces the limit instead.
logging.getLogger("math_verify").setLevel(logging.ERROR)

MATH_VERIFY_NO_TIMEOUT = None


@lru_cache(maxsize=16384)
def parse_answer(answer: str) -> list:
    """math-verify's parse of one bare answer (a LaTeX or plain string, no surrounding text).

    Cached: gold answers repeat across a group's G samples and across epochs, and short model
    answers ("2", "\\frac{1}{2}") repeat across problems. Parsed sympy objects are immutable.
    """
    return parse("$" + answer + "$", parsing_timeout=MATH_VERIFY_NO_TIMEOUT)


parse_gold = parse_answer


def check_pair(pair: tuple[str, str]) -> tuple[bool, str | None]:
    """``(equivalent, note)``: note says why a non-equivalent answer could not even be parsed."""
    gold, answer = pair
    gold_parsed = parse_gold(gold)
    if not gold_parsed:
        raise ValueError(f"math-verify cannot parse the gold answer {gold[:200]!r}")
    parsed = parse_answer(answer)
    if not parsed:
        return False, "math-verify cannot parse the answer"
    return bool(verify(gold_parsed, parsed, timeout_seconds=MATH_VERIFY_NO_TIMEOUT)), None


# Warm up at import (before the worker reports ready), so the first real check is not charged
# for sympy's and the LaTeX grammar's lazy initialisation.
check_pair(("\\frac{1}{2}", "0.5"))
