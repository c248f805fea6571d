"""Trace analytics of reasoning outputs: length distribution, reflection words, language mixing.

R1-Zero's "aha moment" shows up as reflection words ("wait", "verify", "let me check") growing
with training, and its readability problem as language mixing in the chain of thought (R1 paper
sections 2.2.4 and 2.3.2). These functions measure both on any list of completions, and per step
over a training run's samples.jsonl. Pure Python (no torch).

Definitions (documented choices, not from the paper):
- a phrase counts when it occurs as whole words, case-insensitively ("Wait," counts, "waiting"
  does not);
- language mixing is measured by Unicode script: each Han or kana character counts as one word,
  any other run of letters of one script as one word; Greek letters are ignored (math symbols).
  A response is *mixed* when at least `min_foreign_words` of its words are in a script other
  than the target (the given ``target_script``, else the response's most frequent script).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from r1lab.errors import DataError
from r1lab.utils.jsonl import read_jsonl

REFLECTION_PHRASES = ("wait", "verify", "let me check", "double-check")

_SCRIPTS = {
    "LATIN": "latin",
    "CJK": "han",
    "HIRAGANA": "kana",
    "KATAKANA": "kana",
    "HANGUL": "hangul",
    "CYRILLIC": "cyrillic",
    "ARABIC": "arabic",
    "HEBREW": "hebrew",
    "DEVANAGARI": "devanagari",
    "THAI": "thai",
}
_PER_CHARACTER = {"han", "kana"}


def script_of(ch: str) -> str | None:
    """'latin', 'han', 'kana', 'cyrillic', ... for a letter; None for non-letters and Greek."""
    if not ch.isalpha():
        return None
    words = unicodedata.name(ch, "").split()
    if words and words[0] in ("FULLWIDTH", "HALFWIDTH"):
        words = words[1:]
    if not words or words[0] == "GREEK":
        return None
    return _SCRIPTS.get(words[0], "other")


def script_words(text: str) -> Counter:
    """Word counts per script (a Han/kana character is one word, see the module docstring)."""
    counts: Counter = Counter()
    run: str | None = None
    for ch in text:
        script = script_of(ch)
        if script in _PER_CHARACTER:
            counts[script] += 1
            run = None
        elif script is None:
            run = None
        elif script != run:
            counts[script] += 1
            run = script
    return counts


def foreign_words(text: str, target_script: str | None = None) -> tuple[int, int]:
    """(words outside the target script, all words) of one text."""
    counts = script_words(text)
    total = sum(counts.values())
    if not total:
        return 0, 0
    target = target_script or counts.most_common(1)[0][0]
    return total - counts.get(target, 0), total


def _phrase_pattern(phrase: str) -> re.Pattern:
    words = [re.escape(w) for w in phrase.split()]
    return re.compile(r"(?<![\w-])" + r"\s+".join(words) + r"(?![\w-])", re.IGNORECASE)


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of already sorted values."""
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def trace_stats(
    texts: Sequence[str],
    num_tokens: Sequence[int] | None = None,
    *,
    phrases: Sequence[str] = REFLECTION_PHRASES,
    target_script: str | None = None,
    min_foreign_words: int = 1,
) -> dict[str, float]:
    """Statistics of a set of completions.

    Keys: ``len_mean``, ``len_p10``, ``len_p50``, ``len_p90``, ``len_max`` (in tokens when
    `num_tokens` is given, else whitespace words); per phrase ``reflect/<phrase>`` (share of
    responses that use it) and ``reflect/<phrase>/per_response`` (mean count);
    ``reflect/any`` (share using any phrase); ``lang_mix_rate`` (share of mixed responses) and
    ``foreign_word_share`` (mean share of foreign-script words); ``num_responses``.
    """
    if not texts:
        raise DataError("trace_stats needs at least one completion")
    if num_tokens is not None and len(num_tokens) != len(texts):
        raise DataError(f"{len(texts)} texts but {len(num_tokens)} token counts")
    lengths = (
        sorted(float(n) for n in num_tokens)
        if num_tokens is not None
        else sorted(float(len(t.split())) for t in texts)
    )
    n = len(texts)
    out: dict[str, float] = {
        "num_responses": n,
        "len_mean": sum(lengths) / n,
        "len_p10": _quantile(lengths, 0.1),
        "len_p50": _quantile(lengths, 0.5),
        "len_p90": _quantile(lengths, 0.9),
        "len_max": lengths[-1],
    }
    any_hit = [False] * n
    for phrase in phrases:
        pattern = _phrase_pattern(phrase)
        counts = [len(pattern.findall(t)) for t in texts]
        out[f"reflect/{phrase}"] = sum(c > 0 for c in counts) / n
        out[f"reflect/{phrase}/per_response"] = sum(counts) / n
        any_hit = [a or c > 0 for a, c in zip(any_hit, counts)]
    out["reflect/any"] = sum(any_hit) / n
    mixed, shares = 0, []
    for t in texts:
        foreign, total = foreign_words(t, target_script)
        mixed += foreign >= min_foreign_words
        shares.append(foreign / total if total else 0.0)
    out["lang_mix_rate"] = mixed / n
    out["foreign_word_share"] = sum(shares) / n
    return out


def trace_stats_by_step(
    samples_jsonl: Path,
    *,
    text_key: str = "completion",
    step_key: str = "step",
    **stats_kw: Any,
) -> list[dict[str, float]]:
    """`trace_stats` of a training run's sample log, one row per step (sorted by step)."""
    rows = read_jsonl(Path(samples_jsonl))
    by_step: dict[Any, list[str]] = {}
    for row in rows:
        if step_key in row and isinstance(row.get(text_key), str):
            by_step.setdefault(row[step_key], []).append(row[text_key])
    if not by_step:
        raise DataError(f"{samples_jsonl}: no rows with {step_key!r} and {text_key!r}")
    return [{step_key: s, **trace_stats(by_step[s], **stats_kw)} for s in sorted(by_step)]
