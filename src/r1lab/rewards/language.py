"""Language-consistency reward (DeepSeek-R1 §2.3.2; algorithms.md §10.2).

``R_lang = (# target-language words in the chain of thought) / (# words in the chain of thought)``,
added to the accuracy reward in R1's reasoning-RL stage. The paper does not say how words are
counted or languages identified; this module's rule:

1. **The chain of thought** is the text inside ``<think>...</think>`` (up to the end of the text
   when the block is never closed; everything before ``</think>`` with ``think_in_prompt=True``;
   the whole completion when it has no tag at all).
2. **Language-neutral material is removed first:** fenced and inline code, LaTeX math
   (``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``), LaTeX commands, URLs, XML-like tags. Digits
   and punctuation are never words.
3. **Words:** every Han ideograph and every kana counts as one word (Chinese and Japanese are
   written without spaces; one character per word is the usual word-count convention for CJK); a
   run of Hangul is one Korean word; a run of letters of any other script is one word. Latin
   tokens of a single letter (``x``, ``n``: math variables outside ``$..$``) are neutral and not
   counted, so a Chinese derivation that names its variable ``x`` is not penalised.
4. **Language of a word:** CJK by Unicode script (Han -> zh, or ja when the target is ja; kana
   -> ja; Hangul -> ko); any non-Latin script is never a Latin-script target. Latin-script words
   are identified by the offline detector ``lingua`` among ``languages``, per clause where a
   clause (a sentence cut at ``,`` ``;`` or a dash) has at least ``min_clause_words`` Latin
   words, so a sentence that switches language between clauses is scored by its word shares
   ("Let me compute the sum of these squares, puis je vérifie le résultat avec soin": 8 en,
   7 fr), not as one language. The other words of a sentence with at least
   ``min_sentence_words`` Latin words get the sentence's language; those of shorter sentences
   the language detected for all the Latin words of the chain of thought together. Latin words
   are non-target when the target is zh, ja or ko (no detector is loaded then).

A chain of thought with no word scores 0 (``info["reason"]``). The detector needs the
``lingua-language-detector`` package (about 100 MB installed, offline). Its models load on first
use: for the default 11 languages about 4-5 s and 300 MB of memory in high-accuracy mode (the
default), 0.4 s and 45 MB with ``low_accuracy=True``, which misreads more 3-5 word sentences
("Let me compute the sum" -> German); then about 0.3 ms per sentence.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from functools import lru_cache

from r1lab.errors import ConfigError
from r1lab.rewards.base import REWARDS, Completion, RewardResult

CJK_TARGETS = ("zh", "ja", "ko")
DEFAULT_LATIN_LANGUAGES = ("en", "fr", "de", "es", "pt", "it", "nl", "id", "tr", "pl", "vi")

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_KANA = "\u3040-\u30ff\u31f0-\u31ff"
_HANGUL = "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_WORD = re.compile(
    rf"(?P<han>[{_HAN}])|(?P<kana>[{_KANA}])|(?P<hangul>[{_HANGUL}]+)"
    rf"|(?P<latin>[{_LATIN}]+(?:['’][{_LATIN}]+)*)"
    rf"|(?P<other>(?:(?![{_HAN}{_KANA}{_HANGUL}{_LATIN}])[^\W\d_])+)"
)
_NEUTRAL = re.compile(
    r"```.*?```|`[^`\n]*`|\$\$.*?\$\$|\$[^$]*\$|\\\(.*?\\\)|\\\[.*?\\\]"
    r"|\\[A-Za-z]+|https?://\S+|<[^>\n]{1,40}>",
    re.DOTALL,
)
_SENTENCE_END = re.compile(r"[.!?;:\n。！？；：]+")
_CLAUSE_END = re.compile(r"[,，、]|\s[-–—]+\s|[–—]")


def chain_of_thought(
    text: str, open_tag: str = "<think>", close_tag: str = "</think>", think_in_prompt=False
) -> str:
    """The reasoning part of a completion (rule 1 of the module doc)."""
    if think_in_prompt:
        return text.split(close_tag, 1)[0]
    start = text.find(open_tag)
    if start < 0:
        return text.split(close_tag, 1)[0] if close_tag in text else text
    return text[start + len(open_tag) :].split(close_tag, 1)[0]


def count_clauses(text: str) -> list[list[list[tuple[str, str]]]]:
    """Sentences of clauses of ``(script, word)`` pairs, neutral material removed (rules 2-3).

    ``script`` is one of han, kana, hangul, latin, other. Empty clauses and sentences are
    dropped."""
    sentences = []
    for sentence in _SENTENCE_END.split(_NEUTRAL.sub(" ", text)):
        clauses = []
        for clause in _CLAUSE_END.split(sentence):
            words = [(m.lastgroup, m.group()) for m in _WORD.finditer(clause)]
            words = [(s, w) for s, w in words if not (s == "latin" and len(w) == 1)]
            if words:
                clauses.append(words)
        if clauses:
            sentences.append(clauses)
    return sentences


def count_words(text: str) -> list[list[tuple[str, str]]]:
    """Sentences of ``(script, word)`` pairs (`count_clauses` with the clauses joined)."""
    return [[p for clause in s for p in clause] for s in count_clauses(text)]


@lru_cache(maxsize=8)
def _detector(languages: tuple[str, ...], low_accuracy: bool):
    try:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder
    except ImportError as exc:
        raise ConfigError(
            "the language reward needs 'lingua-language-detector' for Latin-script targets: "
            "pip install lingua-language-detector"
        ) from exc
    langs = []
    for code in languages:
        try:
            langs.append(Language.from_iso_code_639_1(IsoCode639_1.from_str(code)))
        except (ValueError, AttributeError) as exc:
            raise ConfigError(f"language reward: unknown ISO 639-1 code {code!r}") from exc
    if len(langs) < 2:
        raise ConfigError("language reward: 'languages' needs at least two candidates")
    builder = LanguageDetectorBuilder.from_languages(*langs)
    return (builder.with_low_accuracy_mode() if low_accuracy else builder).build()


_detector_lock = threading.Lock()  # lingua's detector is built once per language set


def _detect(texts: list[str], languages: tuple[str, ...], low_accuracy: bool) -> list[str | None]:
    with _detector_lock:
        detector = _detector(languages, low_accuracy)
    found = detector.detect_languages_in_parallel_of(texts)
    return [None if lang is None else lang.iso_code_639_1.name.lower() for lang in found]


def word_languages(
    sentences: list[list[list[tuple[str, str]]]],
    target: str,
    languages: tuple[str, ...] = DEFAULT_LATIN_LANGUAGES,
    min_sentence_words: int = 3,
    low_accuracy: bool = False,
    min_clause_words: int = 5,
) -> Counter:
    """Count words per language code (rule 4); 'unknown' for undetectable Latin text.

    ``sentences`` as `count_clauses` returns them."""
    counts: Counter = Counter()
    script_lang = {"han": "ja" if target == "ja" else "zh", "kana": "ja", "hangul": "ko"}
    latin_sentences: list[list[list[str]]] = []  # sentence -> clauses -> Latin words
    for clauses in sentences:
        for script, _ in (p for clause in clauses for p in clause):
            if script in script_lang:
                counts[script_lang[script]] += 1
            elif script == "other":
                counts["other-script"] += 1
        latin = [[w for s, w in clause if s == "latin"] for clause in clauses]
        if any(latin):
            latin_sentences.append([c for c in latin if c])
    if not latin_sentences:
        return counts
    if target in CJK_TARGETS:
        counts["latin"] += sum(len(c) for s in latin_sentences for c in s)
        return counts
    units: list[tuple[list[str], int]] = []  # (words detected together, words that take it)
    rest_overall = 0
    for clauses in latin_sentences:
        rest = [w for c in clauses if len(c) < min_clause_words for w in c]
        units += [(c, len(c)) for c in clauses if len(c) >= min_clause_words]
        if rest and sum(map(len, clauses)) >= min_sentence_words:
            units.append(([w for c in clauses for w in c], len(rest)))
        else:
            rest_overall += len(rest)
    every = [w for s in latin_sentences for c in s for w in c]
    found = _detect(
        [" ".join(words) for words, _ in units] + [" ".join(every)], languages, low_accuracy
    )
    for (_, n), lang in zip(units, found):
        counts[lang or "unknown"] += n
    if rest_overall:
        counts[found[-1] or "unknown"] += rest_overall
    return counts


def language_share(
    text: str,
    target: str = "en",
    languages: tuple[str, ...] = DEFAULT_LATIN_LANGUAGES,
    min_sentence_words: int = 3,
    low_accuracy: bool = False,
    min_clause_words: int = 5,
) -> tuple[float, Counter]:
    """(share of target-language words, word counts per language) of a chain of thought."""
    target = target.lower()
    if target not in CJK_TARGETS and target not in languages:
        raise ConfigError(
            f"language reward: target {target!r} is neither zh/ja/ko nor in languages "
            f"{list(languages)}"
        )
    counts = word_languages(
        count_clauses(text),
        target,
        tuple(languages),
        min_sentence_words,
        low_accuracy,
        min_clause_words,
    )
    total = sum(counts.values())
    return (counts[target] / total if total else 0.0), counts


@REWARDS.register("language")
def language_reward(
    c: Completion,
    target: str = "en",
    languages: tuple[str, ...] | list[str] = DEFAULT_LATIN_LANGUAGES,
    min_sentence_words: int = 3,
    open_tag: str = "<think>",
    close_tag: str = "</think>",
    think_in_prompt: bool = False,
    low_accuracy: bool = False,
    min_clause_words: int = 5,
) -> RewardResult:
    """R1 language consistency: the share of target-language words in the chain of thought."""
    cot = chain_of_thought(c.text, open_tag, close_tag, think_in_prompt)
    share, counts = language_share(
        cot, target, tuple(languages), min_sentence_words, low_accuracy, min_clause_words
    )
    info: dict = {"words": dict(counts)}
    if not counts:
        info["reason"] = "no words in the chain of thought"
    return RewardResult(share, info=info)
