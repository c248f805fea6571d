"""Load task rows from JSONL or Parquet files (or any `datasets` source) into `Example`s.

A row needs a question and a gold answer; the verifier comes from the row (``verifier`` column)
or from the caller. Malformed rows raise `DataError` naming the file and the row number.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from r1lab.errors import DataError
from r1lab.types import Example


def read_rows(path: str | Path) -> Iterable[tuple[int, Any]]:
    """(row number, row) pairs from a .jsonl/.json/.parquet file or ``hf:NAME[:split]``."""
    src = str(path)
    if src.startswith("hf:"):
        import datasets

        name, _, split = src[3:].partition(":")
        yield from enumerate(datasets.load_dataset(name, split=split or "train"), 1)
        return
    p = Path(src)
    if not p.exists():
        raise DataError(f"data file not found: {p}")
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from enumerate(pq.read_table(p).to_pylist(), 1)
        return
    with p.open() as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield i, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{p}:{i}: not valid JSON ({exc.msg})") from None


def row_to_example(
    row: Any,
    where: str,
    *,
    question_key: str = "question",
    answer_key: str = "answer",
    verifier: str | None = None,
    id_key: str = "id",
) -> Example:
    if not isinstance(row, Mapping):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for key in (question_key, answer_key):
        if row.get(key) in (None, ""):
            raise DataError(f"{where}: missing {key!r} (row keys: {', '.join(map(str, row))})")
    ver = row.get("verifier") or verifier
    if not ver:
        raise DataError(f"{where}: no 'verifier' in the row and none configured")
    meta = {k: v for k, v in row.items() if k not in (question_key, answer_key, "verifier")}
    return Example(
        id=str(row.get(id_key, where)),
        question=str(row[question_key]),
        answer=str(row[answer_key]),
        verifier=str(ver),
        task=str(row.get("task", "")),
        meta=meta,
    )


def load_examples(path: str | Path, **keys: Any) -> list[Example]:
    out = [row_to_example(r, f"{path}:{i}", **keys) for i, r in read_rows(path)]
    if not out:
        raise DataError(f"{path}: no rows")
    return out
