"""Crash-safe storage of a rejection-sampling run: killed at any moment, it resumes exactly.

Layout of the store directory:
- ``rows.jsonl``: kept rows, appended chunk by chunk and fsync'ed; only its first
  ``state["bytes"]`` bytes are committed.
- ``state.json``: ``{fingerprint, chunks_done, bytes, rows, stats}``, replaced atomically
  (write a temporary file, fsync, rename) AFTER the chunk's rows are on disk.

A chunk is therefore committed whole or not at all: on open, rows past the committed length (a
chunk killed half-written) are cut off and that chunk is generated again. The fingerprint (a hash
of everything that decides the output) makes a restart with a different config fail instead of
mixing two datasets. ``R1LAB_RS_EXIT_AFTER_ROWS=N`` makes the process exit abruptly right after
writing its N-th row (before the commit): the crash tests use it to stop mid-chunk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from r1lab.errors import ConfigError, DataError

CRASH_ENV = "R1LAB_RS_EXIT_AFTER_ROWS"


def _fsync_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class RSStore:
    def __init__(self, directory: Path, fingerprint: str) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rows_path = self.dir / "rows.jsonl"
        self.state_path = self.dir / "state.json"
        self.fingerprint = fingerprint
        self._written_here = 0
        self._crash_after = int(os.environ.get(CRASH_ENV, "0") or 0)
        if self.state_path.exists():
            self.state = json.loads(self.state_path.read_text())
            if self.state.get("fingerprint") != fingerprint:
                raise ConfigError(
                    f"{self.dir} holds a rejection-sampling run with a different config or prompt "
                    "set; use another run_name/output directory, or delete it to start over"
                )
        else:
            self.state = {
                "fingerprint": fingerprint,
                "chunks_done": 0,
                "bytes": 0,
                "rows": 0,
                "stats": {},
                "complete": False,
            }
        self._truncate_to_committed()

    def _truncate_to_committed(self) -> None:
        committed = int(self.state["bytes"])
        if not self.rows_path.exists():
            if committed:
                raise DataError(
                    f"{self.rows_path} is missing but {self.state_path} says "
                    f"{committed} bytes were committed; delete {self.dir} to restart"
                )
            self.rows_path.touch()
            return
        size = self.rows_path.stat().st_size
        if size < committed:
            raise DataError(
                f"{self.rows_path} is shorter than its committed length; the run "
                f"directory was damaged, delete {self.dir} to restart"
            )
        if size > committed:  # an uncommitted, possibly torn tail from a killed run
            with self.rows_path.open("r+b") as f:
                f.truncate(committed)

    @property
    def chunks_done(self) -> int:
        return int(self.state["chunks_done"])

    def committed_rows(self) -> list[dict[str, Any]]:
        with self.rows_path.open() as f:
            return [json.loads(line) for line in f if line.strip()]

    def commit(self, rows: list[dict[str, Any]], stats: dict[str, int]) -> None:
        """Append one chunk's rows, make them durable, then advance the committed state."""
        with self.rows_path.open("a") as f:
            for row in rows:
                f.write(json.dumps(row, sort_keys=True, default=float) + "\n")
                f.flush()
                self._written_here += 1
                if self._crash_after and self._written_here >= self._crash_after:
                    os._exit(75)  # simulated crash between a row write and the commit
            os.fsync(f.fileno())
        self.state = {
            **self.state,
            "chunks_done": self.chunks_done + 1,
            "bytes": self.rows_path.stat().st_size,
            "rows": int(self.state["rows"]) + len(rows),
            "stats": stats,
        }
        _fsync_write(self.state_path, json.dumps(self.state, indent=1))

    def mark_complete(self) -> None:
        self.state = {**self.state, "complete": True}
        _fsync_write(self.state_path, json.dumps(self.state, indent=1))


def write_dataset(rows: list[dict[str, Any]], path: Path) -> Path:
    """The final SFT-ready file (.jsonl or .parquet), written atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError("Parquet output needs pyarrow: pip install 'r1lab[data]'") from None

        keys = list(dict.fromkeys(k for r in rows for k in r))  # every column of every row
        pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows]), tmp)
    elif path.suffix == ".jsonl":
        tmp.write_text("".join(json.dumps(r, sort_keys=True, default=float) + "\n" for r in rows))
    else:
        raise ConfigError(f"output {path.name!r} must end in .jsonl or .parquet")
    tmp.replace(path)
    return path
