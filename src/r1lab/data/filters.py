"""Sample filters of DeepSeek-R1 rejection sampling (paper §2.3.3; algorithms.md §10.3).

R1 keeps only correct samples and then "filters out chain-of-thought with mixed languages, long
paragraphs, and code blocks". Each filter here is a registered function of one `Candidate` that
returns ``None`` to keep it or a short reason to drop it; `first_failure` applies a spec in order.

| name             | drops a sample when                                                       |
|------------------|---------------------------------------------------------------------------|
| `truncated`      | generation hit the token limit (no end of answer)                         |
| `length`         | completion tokens / characters fall outside [min, max]                    |
| `mixed_language` | more than ``max_other_share`` of the reasoning's words are in another      |
|                  | script than the target language's (optionally: another Latin language)     |
| `long_paragraph` | a reasoning paragraph (blank-line separated) exceeds ``max_chars``/``max_words`` |
| `code_block`     | the reasoning holds a fenced code block (``` or ~~~)                       |
| `readable`       | the completion is not one reasoning block then a non-empty summary (the R1 |
|                  | readable pattern, `rewards.format.r1_readable_parts`)                      |

Word counting reuses the language reward's segmentation (`rewards.language.count_words`: code,
LaTeX and tags are neutral; CJK characters count one word each). Pure Python, no torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from r1lab.config import constrained, registered, takes_params
from r1lab.errors import ConfigError
from r1lab.registry import Registry
from r1lab.rewards.format import r1_readable_parts
from r1lab.rewards.language import count_words, language_share


@dataclass(frozen=True)
class Candidate:
    """What a filter sees: the completion, its reasoning and summary parts, generation facts."""

    text: str
    reasoning: str
    summary: str = ""
    num_tokens: int = 0
    truncated: bool = False


@dataclass(frozen=True)
class FilterSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


FilterFn = Callable[..., str | None]
FILTERS: Registry[FilterFn] = Registry("sample filter")
constrained(takes_params(FILTERS), name=registered(FILTERS))(FilterSpec)  # checked at load

# scripts (as `count_words` names them) a target language is written in
TARGET_SCRIPTS = {"zh": {"han"}, "ja": {"han", "kana"}, "ko": {"hangul", "han"}}
_PARAGRAPH = re.compile(r"\n\s*\n")
_FENCE = re.compile(r"^\s*(```|~~~)", re.MULTILINE)


@FILTERS.register("truncated")
def truncated_filter(c: Candidate) -> str | None:
    return "truncated at the token limit" if c.truncated else None


@FILTERS.register("length")
def length_filter(
    c: Candidate,
    min_tokens: int = 0,
    max_tokens: int = 0,
    min_chars: int = 0,
    max_chars: int = 0,
) -> str | None:
    """Bounds on the whole completion; 0 disables a bound."""
    if min_tokens and c.num_tokens < min_tokens:
        return f"{c.num_tokens} tokens < min_tokens {min_tokens}"
    if max_tokens and c.num_tokens > max_tokens:
        return f"{c.num_tokens} tokens > max_tokens {max_tokens}"
    if min_chars and len(c.text) < min_chars:
        return f"{len(c.text)} characters < min_chars {min_chars}"
    if max_chars and len(c.text) > max_chars:
        return f"{len(c.text)} characters > max_chars {max_chars}"
    return None


@FILTERS.register("mixed_language")
def mixed_language_filter(
    c: Candidate,
    target: str = "en",
    max_other_share: float = 0.0,
    detect_latin: bool = False,
    languages: Sequence[str] = ("en", "fr", "de", "es", "pt", "it", "nl"),
) -> str | None:
    """Share of reasoning words outside the target language's script(s) > ``max_other_share``.

    With ``detect_latin=True`` (and a Latin-script target) words are attributed to languages by
    the language reward's detector, so English reasoning with French sentences is mixed too.
    """
    if detect_latin and target not in TARGET_SCRIPTS:
        share, counts = language_share(c.reasoning, target, tuple(languages))
        other = 1.0 - share if sum(counts.values()) else 0.0
    else:
        scripts = TARGET_SCRIPTS.get(target, {"latin"})
        words = [s for sentence in count_words(c.reasoning) for s, _ in sentence]
        other = sum(s not in scripts for s in words) / len(words) if words else 0.0
    if other > max_other_share:
        return f"{other:.0%} of reasoning words are not {target} (max {max_other_share:.0%})"
    return None


@FILTERS.register("long_paragraph")
def long_paragraph_filter(c: Candidate, max_chars: int = 1500, max_words: int = 0) -> str | None:
    """A blank-line-separated paragraph of the reasoning is longer than the limits (0 = off)."""
    for para in _PARAGRAPH.split(c.reasoning):
        if max_chars and len(para.strip()) > max_chars:
            return f"a reasoning paragraph has {len(para.strip())} characters > {max_chars}"
        if max_words and len(para.split()) > max_words:
            return f"a reasoning paragraph has {len(para.split())} words > {max_words}"
    return None


@FILTERS.register("code_block")
def code_block_filter(c: Candidate) -> str | None:
    return "a code block inside the reasoning" if _FENCE.search(c.reasoning) else None


@FILTERS.register("readable")
def readable_filter(
    c: Candidate, open_tag: str = "<think>", close_tag: str = "</think>"
) -> str | None:
    if r1_readable_parts(c.text, open_tag, close_tag) is None:
        return "not one reasoning block followed by a summary"
    return None


def check_filters(spec: Sequence[FilterSpec]) -> None:
    """Fail at config time on unknown names (with the known ones) or duplicates."""
    seen = set()
    for f in spec:
        FILTERS.get(f.name)
        if f.name in seen:
            raise ConfigError(f"sample filter {f.name!r} is listed twice")
        seen.add(f.name)


def first_failure(c: Candidate, spec: Sequence[FilterSpec]) -> tuple[str, str] | None:
    """``(filter name, reason)`` of the first filter that drops ``c``, else None."""
    for f in spec:
        reason = FILTERS.get(f.name)(c, **f.params)
        if reason is not None:
            return f.name, reason
    return None


def default_filters() -> tuple[FilterSpec, ...]:
    return (
        FilterSpec("truncated"),
        FilterSpec("mixed_language"),
        FilterSpec("long_paragraph"),
        FilterSpec("code_block"),
    )
