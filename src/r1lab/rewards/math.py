"""The ``math`` verifier: extract the final answer, let math-verify decide equivalence.

Per sample: extract the answer (`rewards.extract` policy: the verifier's ``extractor`` param, else
the row's ``extractor`` field, else ``answer_or_boxed``, the strict form RL rewards keep; ``r1lab
grade`` and ``r1lab eval`` use the ``default`` chain), strip math delimiters (``$..$``,
``\\(..\\)``, ``\\[..\\]``) and a trailing period, then

1. no answer found -> 0 (``info["reason"]``), no error: the model's fault, not the grader's;
   a chain's ``math_verify`` stage runs as one pool task that extracts over the whole text and
   verifies what it finds (the parsed value itself, so ``28 percent`` stays 0.28);
2. the answer is the gold string itself -> 1 without parsing (``shortcut``; identical strings are
   equal under any equivalence, and this is the most common correct answer);
3. the verdict cache, keyed by ``(gold, answer)``, shared by every call in this process;
4. else math-verify's ``parse`` + ``verify`` (fractions, decimals, percentages, LaTeX, intervals,
   sets, tuples, matrices, text) in a pool of worker processes (`rewards.pool`), one check per
   task with a hard wall-clock limit ``timeout_s``: a check still running then has its worker
   killed and replaced, and scores 0 with a ``timeout`` error (counted by `combine`).

The pool is created on first use with 2 workers (this project's 2-core machine; see
`configure_math_pool`), reused by every later call, and shut down at interpreter exit. Within a
batch each distinct (gold, answer) pair is checked once, and the checks of one gold answer go to
one worker where that keeps both busy (each worker caches parsed answers). Equivalence itself is
math-verify's: no rule here decides that two different strings are equal.

Known math-verify verdicts to be aware of (tests/rewards/math_cases.py keeps them as xfails):
a base subscript is dropped (``52_8`` "equals" ``52_9``), numbers are compared after rounding to
6 decimals (``.0000672`` "equals" ``.0000673``), a number inside ``\text{}`` is not parsed.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

from r1lab.rewards.base import VERIFIERS, BatchContext, Completion, RewardResult, batch_form
from r1lab.rewards.extract import MATH_VERIFY, answer_region, run_stages, stages_of
from r1lab.rewards.pool import WorkerPool

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_WORKERS = 2
DEFAULT_EXTRACTOR = "answer_or_boxed"
_HANDLER = "r1lab.rewards.math_check:handle"
_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


class VerdictCache:
    """A bounded, thread-safe LRU map ``(gold, answer) -> (score, note, timeout limit or None)``."""

    def __init__(self, max_size: int = 200_000) -> None:
        self.max_size = max_size
        self._data: OrderedDict[tuple[str, str], tuple[float, str | None, float | None]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, str], timeout_s: float):
        """The cached verdict; a cached timeout counts only for a limit no longer than its own."""
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and (entry[2] is None or timeout_s <= entry[2]):
                self._data.move_to_end(key)
                self.hits += 1
                return entry
            self.misses += 1
            return None

    def put(self, key: tuple[str, str], entry: tuple[float, str | None, float | None]) -> None:
        with self._lock:
            self._data[key] = entry
            self._data.move_to_end(key)
            while len(self._data) > self.max_size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


VERDICTS = VerdictCache()
_pool: WorkerPool | None = None
_pool_settings = {"num_workers": DEFAULT_WORKERS, "memory_limit_mb": 2048}
_pool_lock = threading.Lock()


def configure_math_pool(num_workers: int = DEFAULT_WORKERS, memory_limit_mb: int = 2048) -> None:
    """Size the pool (closes the current one; the next check starts the new one)."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.close()
            _pool = None
        _pool_settings.update(num_workers=num_workers, memory_limit_mb=memory_limit_mb)


def math_pool() -> WorkerPool:
    """The process's pool, created on first use (a forked child makes its own)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._pid != os.getpid():
            _pool = WorkerPool(_HANDLER, **_pool_settings)
        return _pool


@atexit.register
def shutdown_math_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.close()
            _pool = None


def clean_answer(answer: str) -> str:
    """Strip whitespace, one trailing period and one pair of math delimiters (nothing else)."""
    s = answer.strip()
    if s.endswith(".") and not s.endswith(".."):
        s = s[:-1].rstrip()
    for left, right in _DELIMS:
        if len(s) > len(left) + len(right) and s.startswith(left) and s.endswith(right):
            return s[len(left) : -len(right)].strip()
    return s


def _result(entry, extracted: str, cached: bool, seconds: float | None = None) -> RewardResult:
    score, note, limit = entry
    info: dict = {"cached": cached}
    if seconds is not None:
        info["seconds"] = round(seconds, 4)
    if limit is not None:
        return RewardResult(0.0, error=note, extracted=extracted, info={**info, "timeout": True})
    if note is not None:
        info["reason"] = note
    return RewardResult(score, extracted=extracted, info=info)


def grade_answers(
    golds: Sequence[str],
    answers: Sequence[str | None],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    shortcut: bool = True,
    cache: VerdictCache | None = VERDICTS,
) -> list[RewardResult]:
    """Grade extracted answers against gold answers (both bare strings, not whole completions).

    Shapes: golds (B,), answers (B,) -> (B,) results with score 1.0 (equivalent) or 0.0.
    ``shortcut=False`` sends identical strings to math-verify too; ``cache=None`` disables the
    verdict cache. Timeouts and worker failures score 0 with ``error`` set and never raise; only
    a pool that cannot start at all raises `PoolError` (`combine` turns it into errors).
    """
    if len(golds) != len(answers):
        raise ValueError(f"{len(golds)} gold answers for {len(answers)} answers")
    out: list[RewardResult | None] = [None] * len(golds)
    todo: dict[tuple[str, str], list[int]] = {}
    for i, (gold, answer) in enumerate(zip(golds, answers)):
        if answer is None or not clean_answer(answer):
            out[i] = RewardResult(0.0, extracted=answer, info={"reason": "no answer found"})
            continue
        key = (clean_answer(str(gold)), clean_answer(answer))
        if shortcut and key[0] == key[1]:
            out[i] = RewardResult(1.0, extracted=answer, info={"cached": False, "identical": True})
            continue
        entry = cache.get(key, timeout_s) if cache is not None else None
        if entry is not None:
            out[i] = _result(entry, answer, cached=True)
        else:
            todo.setdefault(key, []).append(i)
    keys = list(todo)
    outcomes = math_pool().run(keys, timeout_s, affinity=[gold for gold, _ in keys])
    for key, outcome in zip(keys, outcomes):
        if outcome.ok:
            verdict, note = outcome.value
            entry = (float(verdict), note, None)
        elif outcome.timed_out:
            entry = (0.0, outcome.error, timeout_s)
        else:
            for i in todo[key]:
                out[i] = RewardResult(0.0, error=outcome.error, extracted=answers[i])
            continue  # a crash or a bad gold answer is not cached: it may be fixed or transient
        if cache is not None:
            cache.put(key, entry)
        for i in todo[key]:
            out[i] = _result(entry, answers[i], cached=False, seconds=outcome.seconds)
    return out  # type: ignore[return-value]


@VERIFIERS.register("math")
def verify_math(
    c: Completion,
    extractor: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    shortcut: bool = True,
    cache: bool = True,
) -> RewardResult:
    """1.0 iff the extracted answer is equivalent to ``row["answer"]`` (see the module doc)."""
    return verify_math_batch(
        [c], BatchContext(), extractor, timeout_s=timeout_s, shortcut=shortcut, cache=cache
    )[0]


@batch_form(verify_math)
def verify_math_batch(
    completions: Sequence[Completion],
    ctx: BatchContext,
    extractor: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    shortcut: bool = True,
    cache: bool = True,
) -> list[RewardResult]:
    """Shapes: completions (B,) -> (B,); all pool checks of the batch run in parallel.

    ``info["extractor"]`` names the extractor (a chain's stage) that found the answer.
    ``shortcut=False`` sends identical strings to math-verify too; ``cache=False`` bypasses the
    verdict cache (both for tests and audits; training wants the defaults)."""
    out: list[RewardResult | None] = [None] * len(completions)
    golds: list[str] = [str(c.row.get("answer") or "") for c in completions]
    answers: list[str | None] = [None] * len(completions)
    names: list[str | None] = [None] * len(completions)
    later: dict[int, tuple[str, ...]] = {}  # stages after math_verify, for its misses
    whole_text: list[int] = []
    for i, c in enumerate(completions):
        if not golds[i].strip():
            out[i] = RewardResult(0.0, error="data row has no gold 'answer'")
            continue
        stages = stages_of(extractor or c.row.get("extractor") or DEFAULT_EXTRACTOR)
        if MATH_VERIFY in stages:
            cut = stages.index(MATH_VERIFY)
            stages, later[i] = stages[:cut], stages[cut + 1 :]
        answers[i], names[i] = run_stages(c.text, stages)
        if answers[i] is None and i in later:
            whole_text.append(i)
    _grade_whole_texts(completions, golds, whole_text, timeout_s, out, answers, names, later)
    todo = [i for i in range(len(completions)) if out[i] is None]
    graded = grade_answers(
        [golds[i] for i in todo],
        [answers[i] for i in todo],
        timeout_s,
        shortcut=shortcut,
        cache=VERDICTS if cache else None,
    )
    for i, res in zip(todo, graded):
        out[i] = res
    return [
        replace(r, info={**r.info, "extractor": n}) if n is not None else r
        for r, n in zip(out, names)  # type: ignore[arg-type]
    ]


def _grade_whole_texts(completions, golds, idx, timeout_s, out, answers, names, later) -> None:
    """The `math_verify` stage: extract + verify in one pool task per completion (idx).

    Fills ``out`` where math-verify found an answer (or failed); where it found none, the stages
    after it run here and fill ``answers`` / ``names`` for `grade_answers`."""
    tasks = [("text", clean_answer(golds[i]), answer_region(completions[i].text)) for i in idx]
    outcomes = math_pool().run(tasks, timeout_s, affinity=[t[1] for t in tasks])
    for i, outcome in zip(idx, outcomes):
        if outcome.ok and outcome.value[2] is None:
            answers[i], names[i] = run_stages(completions[i].text, later[i])
            continue
        names[i] = MATH_VERIFY
        if outcome.ok:
            verdict, note, answers[i] = outcome.value
            info: dict = {"cached": False, "seconds": round(outcome.seconds, 4)}
            if note is not None:
                info["reason"] = note
            out[i] = RewardResult(float(verdict), extracted=answers[i], info=info)
        else:
            info = {"timeout": True} if outcome.timed_out else {}
            out[i] = RewardResult(0.0, error=outcome.error, info=info)
