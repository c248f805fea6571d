"""Offline re-grading of a JSONL file of predictions (the library side of ``r1lab grade``).

Each input row holds a model output and a gold answer (field names are options); the chosen
verifier grades every row, batch-wise in chunks (the ``math`` verifier grades a chunk in its
process pool), and one output row per input line records the verdict, the extracted answer and
the extractor that found it (``extractor``; see `rewards.extract` and docs/grading.md).

Nothing is silently skipped, and one bad line does not stop the run: a line that is not UTF-8,
not a JSON object, or lacks the prediction / answer field gets an output row with its ``error``
(and ``line`` number), is counted in ``bad_rows`` (and as not correct), and is reported as one
line in ``problems``. Only a file in which *no* line is usable is a `DataError` (the field names
are then most likely wrong). A check that fails or times out is written with its error and
counted; the ``math`` verifier bounds every check by ``timeout_s`` (a LaTeX bomb scores 0 with a
timeout, it does not hang the run).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1lab.errors import ConfigError, DataError
from r1lab.registry import RegistryError
from r1lab.rewards.base import VERIFIERS, BatchContext, Completion, call_batch
from r1lab.rewards.extract import DEFAULT_POLICY, EXTRACTORS


@dataclass(frozen=True)
class GradeSummary:
    rows: int
    correct: int
    no_answer: int
    errors: int
    timeouts: int
    out_path: Path
    bad_rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.rows if self.rows else 0.0


def read_line(raw: bytes, prediction_field: str, answer_field: str, offset: int = 0) -> dict:
    """One input line (starting at byte ``offset`` of its file) as a row; raises ValueError with a
    one-line reason when it is unusable."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = offset + exc.start
        raise ValueError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte offset {where})"
        ) from None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise ValueError(f"not a JSON object ({type(row).__name__})")
    for name in (prediction_field, answer_field):
        value = row.get(name)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            keys = ", ".join(row) or "none"
            raise ValueError(f"no text field {name!r} (row keys: {keys})")
    return row


def read_predictions(
    path: Path, prediction_field: str, answer_field: str
) -> list[tuple[int, dict | str]]:
    """``(line number, row or one-line error)`` for every non-blank line of ``path``."""
    out: list[tuple[int, dict | str]] = []
    offset = 0
    with Path(path).open("rb") as f:
        for n, raw in enumerate(f, 1):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            try:
                out.append((n, read_line(raw, prediction_field, answer_field, start)))
            except ValueError as exc:
                out.append((n, str(exc)))
    if not out:
        raise DataError(f"{path}: no rows")
    if all(isinstance(r, str) for _, r in out):
        first: dict[str, int] = {}  # each distinct reason, at its first line
        for n, why in out:
            first.setdefault(str(why), n)
        reasons = "; ".join(f"line {n}: {why}" for why, n in list(first.items())[:3])
        raise DataError(
            f"{path}: no line is usable ({reasons}); "
            "choose the field names with the prediction/answer options"
        )
    return out


def verifier_params_for(
    verifier: str, params: Mapping[str, Any] | None, extractor: str | None
) -> dict[str, Any]:
    """The verifier's params: `extractor` (default: the ``default`` policy, for verifiers that
    extract) checked against the registry, and unknown param names refused."""
    fn = VERIFIERS.get(verifier)
    takes = inspect.signature(fn).parameters
    out = dict(params or {})
    if extractor is not None:
        out["extractor"] = extractor
    elif "extractor" in takes:
        out.setdefault("extractor", DEFAULT_POLICY)
    unknown = sorted(set(out) - set(takes))
    if unknown:
        known = ", ".join(p for p in takes if p != "c")
        raise ConfigError(f"verifier {verifier!r} takes no {unknown} (its params: {known})")
    if "extractor" in out:
        try:
            EXTRACTORS.get(out["extractor"])
        except RegistryError as exc:
            raise ConfigError(str(exc)) from None
    return out


def grade_jsonl(
    in_path: str | Path,
    out_path: str | Path,
    verifier: str = "math",
    verifier_params: Mapping[str, Any] | None = None,
    prediction_field: str = "prediction",
    answer_field: str = "answer",
    chunk_size: int = 2000,
    extractor: str | None = None,
) -> GradeSummary:
    """Grade every row of ``in_path`` and write ``out_path`` (input row + verdict fields).

    Output fields added: ``score``, ``correct`` (score >= 1), ``extracted``, ``extractor``,
    ``error``, ``timeout``. ``verifier_params`` go to the verifier (``timeout_s`` ...);
    ``extractor`` overrides theirs.
    """
    fn = VERIFIERS.get(verifier)
    params = verifier_params_for(verifier, verifier_params, extractor)
    lines = read_predictions(Path(in_path), prediction_field, answer_field)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    correct = no_answer = errors = timeouts = 0
    problems = [f"{in_path}:{n}: {r}" for n, r in lines if isinstance(r, str)]
    with out.open("w") as f:
        for start in range(0, len(lines), chunk_size):
            chunk = lines[start : start + chunk_size]
            good = [(n, r) for n, r in chunk if isinstance(r, dict)]
            comps = [
                Completion(
                    str(r[prediction_field]),
                    {**r, "answer": str(r[answer_field]), "verifier": verifier},
                )
                for _, r in good
            ]
            results = dict(zip((n for n, _ in good), call_batch(fn, comps, BatchContext(), params)))
            for n, row in chunk:
                if isinstance(row, str):
                    bad = {"line": n, "score": 0.0, "correct": False, "extracted": None}
                    bad.update(extractor=None, error=row, timeout=False)
                    f.write(json.dumps(bad) + "\n")
                    continue
                res = results[n]
                timed_out = bool(res.info.get("timeout"))
                correct += res.score >= 1.0
                no_answer += res.error is None and res.extracted is None
                errors += res.error is not None
                timeouts += timed_out
                verdict = {
                    "score": res.score,
                    "correct": res.score >= 1.0,
                    "extracted": res.extracted,
                    "extractor": res.info.get("extractor"),
                    "error": res.error,
                    "timeout": timed_out,
                }
                f.write(json.dumps({**row, **verdict}, ensure_ascii=False) + "\n")
    return GradeSummary(
        len(lines), correct, no_answer, errors, timeouts, out, len(problems), problems
    )
