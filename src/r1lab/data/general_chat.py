"""A small synthetic general-chat set: the non-reasoning SFT data of the tiny R1 setting.

R1's stage-3 SFT mixes ~200k non-reasoning samples (writing, factual QA, self-cognition,
translation) into ~600k reasoning ones (algorithms.md §10.3). This module generates analogs from
fixed tables, deterministically from a seed, with a reference response for every prompt:

| kind          | prompt                                | response                              |
|---------------|---------------------------------------|---------------------------------------|
| self          | "Who are you?"                        | "I am r1lab-tiny, a small assistant." |
| greeting      | "Write a greeting for Ana."           | "Hello, Ana! Nice to meet you."       |
| capital       | "What is the capital of France?"      | "The capital of France is Paris."     |
| translate     | "Translate 'cat' into French."        | "In French, 'cat' is 'chat'."         |
| opposite      | "What is the opposite of hot?"        | "The opposite of hot is cold."        |
| spell         | "Spell the word moon backwards."      | "moon backwards is noom."             |

Trivial queries get no chain of thought, as in R1. Rows carry ``verifier: general`` and the
reference as ``answer``; the ``general`` verifier registered here scores 1.0 when the response
(its summary, if it has a reasoning block) matches the reference up to case, spacing and
punctuation - a rule-based stand-in for R1's preference reward model on general prompts.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable

from r1lab.data.readable import chat_row
from r1lab.errors import ConfigError
from r1lab.rewards.base import VERIFIERS, Completion, RewardResult
from r1lab.types import Example

log = logging.getLogger(__name__)

NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goro", "Hana", "Ivan", "Jo", "Kofi", "Lea"]
CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Egypt": "Cairo",
    "Kenya": "Nairobi",
    "Peru": "Lima",
    "Canada": "Ottawa",
    "India": "New Delhi",
    "Chile": "Santiago",
}
WORDS = {
    "cat": {"French": "chat", "Spanish": "gato", "German": "Katze"},
    "dog": {"French": "chien", "Spanish": "perro", "German": "Hund"},
    "house": {"French": "maison", "Spanish": "casa", "German": "Haus"},
    "water": {"French": "eau", "Spanish": "agua", "German": "Wasser"},
    "book": {"French": "livre", "Spanish": "libro", "German": "Buch"},
}
OPPOSITES = {
    "hot": "cold",
    "big": "small",
    "fast": "slow",
    "happy": "sad",
    "light": "dark",
    "open": "closed",
    "early": "late",
    "full": "empty",
    "old": "new",
    "high": "low",
}
SPELL = ["moon", "star", "river", "stone", "cloud", "apple", "green", "tiger", "bread", "smile"]
SELF = ["Who are you?", "What is your name?", "Introduce yourself.", "Are you an assistant?"]

Maker = Callable[[random.Random], tuple[str, str]]


def _self(rng):
    return rng.choice(SELF), "I am r1lab-tiny, a small assistant trained with r1lab."


def _greeting(rng):
    name = rng.choice(NAMES)
    return f"Write a greeting for {name}.", f"Hello, {name}! Nice to meet you."


def _capital(rng):
    country = rng.choice(sorted(CAPITALS))
    return f"What is the capital of {country}?", f"The capital of {country} is {CAPITALS[country]}."


def _translate(rng):
    word = rng.choice(sorted(WORDS))
    lang = rng.choice(sorted(WORDS[word]))
    return f"Translate '{word}' into {lang}.", f"In {lang}, '{word}' is '{WORDS[word][lang]}'."


def _opposite(rng):
    word = rng.choice(sorted(OPPOSITES))
    return f"What is the opposite of {word}?", f"The opposite of {word} is {OPPOSITES[word]}."


def _spell(rng):
    word = rng.choice(SPELL)
    return f"Spell the word {word} backwards.", f"{word} backwards is {word[::-1]}."


KINDS: dict[str, Maker] = {
    "self": _self,
    "greeting": _greeting,
    "capital": _capital,
    "translate": _translate,
    "opposite": _opposite,
    "spell": _spell,
}


def general_examples(n: int, seed: int = 0) -> list[Example]:
    """`n` general-chat prompts with reference responses (kinds interleaved, seeded)."""
    rng = random.Random(f"general:{seed}")
    kinds = sorted(KINDS)
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        question, response = KINDS[kind](rng)
        out.append(
            Example(
                id=f"general-{i}",
                question=question,
                answer=response,
                verifier="general",
                task="general",
                meta={"kind": kind},
            )
        )
    return out


def general_sft_rows(n: int, seed: int = 0) -> list[dict]:
    """`n` SFT chat rows (no chain of thought: these are trivial queries)."""
    return [
        chat_row(
            ex.question,
            ex.answer,
            id=ex.id,
            answer=ex.answer,
            verifier="general",
            task="general",
            source="general_chat",
        )
        for ex in general_examples(n, seed)
    ]


def mix_rows(reasoning: list[dict], general: list[dict], ratio: float, seed: int = 0):
    """Reasoning rows plus general rows making up ``ratio`` of the result, shuffled (seeded).

    Returns ``(rows, info)``; when `general` has too few rows the available ones are used and
    ``info["general_ratio"]`` reports the ratio actually reached.
    """
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"general ratio must be in [0, 1), got {ratio}")
    want = round(ratio / (1.0 - ratio) * len(reasoning))
    rng = random.Random(f"mix:{seed}")
    picked = rng.sample(general, min(want, len(general)))
    if len(picked) < want:
        log.warning("general mix: wanted %d general rows, only %d available", want, len(picked))
    rows = reasoning + picked
    rng.shuffle(rows)
    info = {
        "reasoning_rows": len(reasoning),
        "general_rows": len(picked),
        "general_wanted": want,
        "general_ratio": len(picked) / len(rows) if rows else 0.0,
    }
    return rows, info


_NORM = re.compile(r"[\W_]+")


def normalize_response(text: str) -> str:
    return _NORM.sub(" ", text.lower()).strip()


@VERIFIERS.register("general")
def verify_general(c: Completion, close_tag: str = "</think>", **_: object) -> RewardResult:
    """1.0 iff the response (after the reasoning block, if any) matches the row's reference."""
    summary = c.text.split(close_tag, 1)[1] if close_tag in c.text else c.text
    got = normalize_response(summary)
    ok = got == normalize_response(str(c.row["answer"]))
    return RewardResult(float(ok), extracted=summary.strip() or None)
