"""Load task rows from JSONL or Parquet files (or any `datasets` source) into `Example`s.

A row needs a question and a gold answer (text or a number) and a verifier, from the row
(``verifier`` column, which must be registered) or from the caller. Every unreadable source is one `DataError` naming
the file and, where there is one, the line (JSONL) or row (Parquet): a directory, an empty file,
bytes that are not UTF-8 (with the byte offset), a line that is not JSON, a file that is not
Parquet, a row with a missing or non-text field, an unknown verifier. `load_examples` fails on the
first bad row, or with ``skip_bad=True`` skips bad rows and reports how many (`Examples.skipped`);
a source with no good row fails either way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from r1lab.errors import DataError
from r1lab.types import Example

TEXT_TYPES = (str, int, float)  # a question or answer may be a number (42, 0.5); not bool/list


class Examples(list):
    """The loaded `Example`s, plus the bad rows that were skipped (``skip_bad=True``): their
    count (``skipped``) and the first one's message (``first_skipped``)."""

    skipped: int = 0
    first_skipped: str = ""


def _data_file(src: str) -> Path:
    p = Path(src)
    if not p.exists():
        raise DataError(f"data file not found: {p}")
    if p.is_dir():
        raise DataError(f"{p}: is a directory; expected a JSONL or Parquet file")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: empty file (no rows)")
    return p


def read_text_file(path: str | Path) -> str:
    """The UTF-8 text of a file, or a `DataError` naming it (missing, a directory, not UTF-8 with
    the byte offset)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"file not found: {p}")
    if p.is_dir():
        raise DataError(f"{p}: is a directory; expected a file")
    raw = p.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{p}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte offset {exc.start})"
        ) from None


def _jsonl_rows(p: Path) -> Iterator[tuple[int, Any]]:
    offset = 0
    with p.open("rb") as f:
        for i, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                at = offset + exc.start
                raise DataError(
                    f"{p}:{i}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte offset {at}); "
                    "expected JSON lines (or a .parquet file)"
                ) from None
            offset += len(raw)
            if not line.strip():
                continue
            try:
                yield i, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{p}:{i}: not valid JSON ({exc.msg})") from None


def _parquet_rows(p: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(p)
    except (pa.ArrowException, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{p}: not a readable Parquet file ({first})") from None
    yield from enumerate(table.to_pylist(), 1)


def read_rows(path: str | Path) -> Iterable[tuple[int, Any]]:
    """(row number, row) pairs from a .jsonl/.json/.parquet file or ``hf:NAME[:split]``; the
    number is the file's line (JSONL) or 1-based row (Parquet)."""
    src = str(path)
    if src.startswith("hf:"):
        import datasets

        name, _, split = src[3:].partition(":")
        yield from enumerate(datasets.load_dataset(name, split=split or "train"), 1)
        return
    p = _data_file(src)
    yield from _parquet_rows(p) if p.suffix == ".parquet" else _jsonl_rows(p)


def _text(row: Mapping, key: str, where: str) -> str:
    value = row.get(key)
    if value is None or value == "":
        raise DataError(f"{where}: missing {key!r} (row keys: {', '.join(map(str, row))})")
    if isinstance(value, bool) or not isinstance(value, TEXT_TYPES):
        raise DataError(f"{where}: {key!r} must be text, got {type(value).__name__} {value!r:.60}")
    return str(value)


def row_to_example(
    row: Any,
    where: str,
    *,
    question_key: str = "question",
    answer_key: str = "answer",
    verifier: str | None = None,
    id_key: str = "id",
) -> Example:
    from r1lab.rewards import VERIFIERS  # the package import registers every verifier

    if not isinstance(row, Mapping):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    question = _text(row, question_key, where)
    answer = _text(row, answer_key, where)
    ver = row.get("verifier") or verifier
    if not ver:
        raise DataError(f"{where}: no 'verifier' in the row and none configured")
    # a row's verifier is data, checked here; the caller's (a config value) is the caller's
    if row.get("verifier") and (not isinstance(ver, str) or ver not in VERIFIERS):
        known = ", ".join(VERIFIERS.names())
        raise DataError(f"{where}: unknown verifier {ver!r}; known: {known}")
    meta = {k: v for k, v in row.items() if k not in (question_key, answer_key, "verifier")}
    return Example(
        id=str(row.get(id_key, where)),
        question=question,
        answer=answer,
        verifier=ver,
        task=str(row.get("task", "")),
        meta=meta,
    )


def load_examples(path: str | Path, *, skip_bad: bool = False, **keys: Any) -> Examples:
    """Every row of `path` as an `Example`; the first bad row raises `DataError`, or with
    ``skip_bad`` is counted in ``skipped`` and left out. No good row at all always fails."""
    out = Examples()
    for i, row in read_rows(path):
        try:
            out.append(row_to_example(row, f"{path}:{i}", **keys))
        except DataError as exc:
            if not skip_bad:
                raise
            out.skipped += 1
            out.first_skipped = out.first_skipped or str(exc)
    if not out:
        if out.skipped:
            raise DataError(f"{path}: every row is bad ({out.skipped}); first: {out.first_skipped}")
        raise DataError(f"{path}: no rows")
    return out
