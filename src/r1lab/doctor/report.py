"""What the run doctor saw over a whole run: every kind of finding with its count and step range.

`DoctorReport` is written next to metrics.jsonl as ``doctor.json`` (machine-readable, read back
with `DoctorReport.load`) and ``doctor.md`` (a table for people).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from r1lab.errors import DataError

JSON_NAME = "doctor.json"
MD_NAME = "doctor.md"


@dataclass(frozen=True)
class ReportEntry:
    """All findings of one check at one level: how many, first and last step, first and last text."""

    check: str
    level: str
    count: int
    first_step: int
    last_step: int
    first_message: str
    last_message: str


@dataclass(frozen=True)
class DoctorReport:
    steps: int  # step rows observed
    entries: tuple[ReportEntry, ...] = ()
    stopped: str | None = None  # the fatal message when the doctor stopped the run
    unchecked: tuple[str, ...] = ()  # enabled checks whose metrics never appeared

    def count(self, check: str, level: str | None = None) -> int:
        """Findings of ``check`` (at ``level``, or at any level)."""
        return sum(e.count for e in self.entries if e.check == check and level in (None, e.level))

    def entry(self, check: str, level: str) -> ReportEntry | None:
        return next((e for e in self.entries if e.check == check and e.level == level), None)

    @property
    def num_warnings(self) -> int:
        return sum(e.count for e in self.entries if e.level == "warning")

    def summary(self) -> str:
        """One line: ``doctor: 12 steps, 3 warnings (truncation x2, ratio x1)``."""
        kinds = ", ".join(f"{e.check} x{e.count}" for e in self.entries if e.level == "warning")
        text = f"doctor: {self.steps} steps, {self.num_warnings} warnings"
        text += f" ({kinds})" if kinds else ""
        if self.unchecked:
            text += f"; not checked (metric missing): {', '.join(self.unchecked)}"
        if self.stopped:
            text += f"; STOPPED: {self.stopped}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "stopped": self.stopped,
            "unchecked": list(self.unchecked),
            "entries": [asdict(e) for e in self.entries],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DoctorReport:
        try:
            return cls(
                steps=int(data["steps"]),
                entries=tuple(ReportEntry(**e) for e in data["entries"]),
                stopped=data.get("stopped"),
                unchecked=tuple(data.get("unchecked", ())),
            )
        except (KeyError, TypeError) as exc:
            raise DataError(f"not a doctor report: {exc}") from None

    def to_markdown(self) -> str:
        lines = ["# Run doctor", "", self.summary(), ""]
        if self.stopped:
            lines += [f"**Training stopped:** {self.stopped}", ""]
        if not self.entries:
            return "\n".join(lines + ["No warnings.", ""])
        lines += [
            "| check | level | count | first step | last step | first message |",
            "|---|---|---:|---:|---:|---|",
        ]
        for e in self.entries:
            msg = e.first_message.replace("|", "\\|")
            lines.append(
                f"| {e.check} | {e.level} | {e.count} | {e.first_step} | {e.last_step} | {msg} |"
            )
        return "\n".join(lines + [""])

    def save(self, out_dir: Path) -> Path:
        """Write ``doctor.json`` and ``doctor.md`` into ``out_dir``; returns the JSON path."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / MD_NAME).write_text(self.to_markdown())
        path = out_dir / JSON_NAME
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: Path) -> DoctorReport:
        """Read ``doctor.json`` (or the run directory holding it)."""
        path = Path(path)
        if path.is_dir():
            path = path / JSON_NAME
        if not path.exists():
            raise DataError(f"{path}: no doctor report (was the run made with the run doctor?)")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: invalid JSON: {exc}") from None
