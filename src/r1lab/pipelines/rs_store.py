"""Crash-safe storage of a rejection-sampling run: killed at any moment, it resumes exactly.

Layout:
- ``rows.jsonl`` (store directory): kept rows, appended chunk by chunk and fsync'ed; only its
  first ``state["bytes"]`` bytes are committed.
- ``samples.jsonl`` (its own path, the run directory): EVERY sample of the chunk with its verdict,
  extracted answer and rejection reason, appended the same way; ``state["sample_bytes"]``.
- ``state.json``: ``{fingerprint, chunks_done, bytes, sample_bytes, rows, stats, provenance}``,
  replaced atomically (write a temporary file, fsync, rename) AFTER the chunk's lines are on disk.
- ``config.yaml``: the resolved config of the run (what ``sample --regrade`` starts from).

A chunk is therefore committed whole or not at all: on open, lines past the committed lengths (a
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


def fsync_write(path: Path, text: str) -> None:
    """Replace ``path`` atomically: write a temporary file, fsync, rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def jsonl_text(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows)


class RSStore:
    def __init__(
        self, directory: Path, fingerprint: str, samples_path: Path, provenance: dict | None = None
    ) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rows_path = self.dir / "rows.jsonl"
        self.samples_path = Path(samples_path)
        self.state_path = self.dir / "state.json"
        self.config_path = self.dir / "config.yaml"
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
                "sample_bytes": 0,
                "rows": 0,
                "stats": {},
                "complete": False,
            }
        self.state.setdefault("provenance", provenance or {})  # the kept rows' run provenance
        self._truncate_to_committed(self.rows_path, int(self.state["bytes"]))
        # runs stored before samples were kept have no "sample_bytes": nothing is committed
        self._truncate_to_committed(self.samples_path, int(self.state.get("sample_bytes", 0)))

    def _truncate_to_committed(self, path: Path, committed: int) -> None:
        if not path.exists():
            if committed:
                raise DataError(
                    f"{path} is missing but {self.state_path} says "
                    f"{committed} bytes were committed; delete {self.dir} to restart"
                )
            path.touch()
            return
        size = path.stat().st_size
        if size < committed:
            raise DataError(
                f"{path} is shorter than its committed length; the run "
                f"directory was damaged, delete {self.dir} to restart"
            )
        if size > committed:  # an uncommitted, possibly torn tail from a killed run
            with path.open("r+b") as f:
                f.truncate(committed)

    @property
    def chunks_done(self) -> int:
        return int(self.state["chunks_done"])

    def committed_rows(self) -> list[dict[str, Any]]:
        with self.rows_path.open() as f:
            return [json.loads(line) for line in f if line.strip()]

    def committed_samples(self) -> list[dict[str, Any]]:
        with self.samples_path.open() as f:
            return [json.loads(line) for line in f if line.strip()]

    def commit(
        self,
        rows: list[dict[str, Any]],
        stats: dict[str, int],
        samples: list[dict[str, Any]],
    ) -> None:
        """Append one chunk's samples and kept rows, make them durable, then advance the
        committed state."""
        with self.samples_path.open("a") as f:
            f.write(jsonl_text(samples))
            f.flush()
            os.fsync(f.fileno())
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
            "sample_bytes": self.samples_path.stat().st_size,
            "rows": int(self.state["rows"]) + len(rows),
            "stats": stats,
        }
        fsync_write(self.state_path, json.dumps(self.state, indent=1))

    def mark_complete(self) -> None:
        self.state = {**self.state, "complete": True}
        fsync_write(self.state_path, json.dumps(self.state, indent=1))

    def replace_all(
        self,
        rows: list[dict[str, Any]],
        samples: list[dict[str, Any]],
        stats: dict[str, int],
        fingerprint: str,
    ) -> None:
        """Rewrite a complete run's samples and kept rows at once (``sample --regrade``): each
        file is replaced atomically, the state last, under the regraded config's fingerprint."""
        fsync_write(self.samples_path, jsonl_text(samples))
        fsync_write(
            self.rows_path,
            "".join(json.dumps(r, sort_keys=True, default=float) + "\n" for r in rows),
        )
        self.fingerprint = fingerprint
        self.state = {
            **self.state,
            "fingerprint": fingerprint,
            "bytes": self.rows_path.stat().st_size,
            "sample_bytes": self.samples_path.stat().st_size,
            "rows": len(rows),
            "stats": stats,
            "complete": True,
        }
        fsync_write(self.state_path, json.dumps(self.state, indent=1))


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
