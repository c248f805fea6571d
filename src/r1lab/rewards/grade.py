"""Offline re-grading of a JSONL file of predictions (the library side of ``r1lab grade``).

Each input row holds a model output and a gold answer (field names are options); the chosen
verifier grades every row, batch-wise in chunks (the ``math`` verifier grades a chunk in its
process pool), and one output row per input row records the verdict. Nothing is silently
skipped: a row without the fields is a `DataError` naming its line; a check that fails or times
out is written with its error and counted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1lab.errors import DataError
from r1lab.rewards.base import VERIFIERS, BatchContext, Completion, call_batch


@dataclass(frozen=True)
class GradeSummary:
    rows: int
    correct: int
    no_answer: int
    errors: int
    timeouts: int
    out_path: Path

    @property
    def accuracy(self) -> float:
        return self.correct / self.rows if self.rows else 0.0


def read_predictions(path: Path, prediction_field: str, answer_field: str) -> list[dict]:
    rows = []
    with Path(path).open() as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            for field in (prediction_field, answer_field):
                if not isinstance(row, dict) or not isinstance(row.get(field), str | int | float):
                    keys = ", ".join(row) if isinstance(row, dict) else type(row).__name__
                    raise DataError(
                        f"{path}:{n}: no text field {field!r} (row keys: {keys}); "
                        "choose the field names with the prediction/answer options"
                    )
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def grade_jsonl(
    in_path: str | Path,
    out_path: str | Path,
    verifier: str = "math",
    verifier_params: Mapping[str, Any] | None = None,
    prediction_field: str = "prediction",
    answer_field: str = "answer",
    chunk_size: int = 2000,
) -> GradeSummary:
    """Grade every row of ``in_path`` and write ``out_path`` (input row + verdict fields).

    Output fields added: ``score``, ``correct`` (score >= 1), ``extracted``, ``error``,
    ``timeout``. ``verifier_params`` go to the verifier (``extractor``, ``timeout_s`` ...).
    """
    fn = VERIFIERS.get(verifier)
    rows = read_predictions(Path(in_path), prediction_field, answer_field)
    params = dict(verifier_params or {})
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    correct = no_answer = errors = timeouts = 0
    with out.open("w") as f:
        for start in range(0, len(rows), chunk_size):
            chunk = rows[start : start + chunk_size]
            comps = [
                Completion(
                    str(r[prediction_field]),
                    {**r, "answer": str(r[answer_field]), "verifier": verifier},
                )
                for r in chunk
            ]
            for row, res in zip(chunk, call_batch(fn, comps, BatchContext(), params)):
                timed_out = bool(res.info.get("timeout"))
                correct += res.score >= 1.0
                no_answer += res.error is None and res.extracted is None
                errors += res.error is not None
                timeouts += timed_out
                verdict = {
                    "score": res.score,
                    "correct": res.score >= 1.0,
                    "extracted": res.extracted,
                    "error": res.error,
                    "timeout": timed_out,
                }
                f.write(json.dumps({**row, **verdict}, ensure_ascii=False) + "\n")
    return GradeSummary(len(rows), correct, no_answer, errors, timeouts, out)
