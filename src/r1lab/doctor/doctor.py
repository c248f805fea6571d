"""`RunDoctor`: runs every enabled check on each step's metrics row, logs, counts, and stops.

Usage inside a training loop (the row is the one written to metrics.jsonl)::

    with RunDoctor(cfg.doctor, log=log).recording(run_dir) as doctor:  # saves doctor.json/.md
        for step in ...:
            ...
            metrics_log.write(row)
            doctor.observe(row)          # raises TrainingStopped when training cannot learn

Each kind of finding (check x level) is logged the first time it occurs; every occurrence is
counted in `report()`. A check whose metrics never appear in the rows is logged once and listed
as unchecked, so a missing metric is visible instead of silently passing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from r1lab.doctor.checks import CHECKS, Check, Finding
from r1lab.doctor.config import DoctorConfig
from r1lab.doctor.report import DoctorReport, ReportEntry
from r1lab.errors import ConfigError, R1LabError
from r1lab.registry import RegistryError


class TrainingStopped(R1LabError):
    """The run doctor found that training cannot learn; the message says why and what to try."""

    def __init__(self, finding: Finding, report: DoctorReport) -> None:
        super().__init__(
            f"training stopped by the run doctor at step {finding.step} "
            f"[{finding.check}]: {finding.message}"
        )
        self.finding = finding
        self.report = report


class RunDoctor:
    """Per-step health checks of an RL run (see r1lab.doctor.checks for the table)."""

    def __init__(self, cfg: DoctorConfig | None = None, *, log: Callable[[str], Any] = print):
        self.cfg = cfg or DoctorConfig()
        self.log = log
        for name in self.cfg.disable:
            try:
                CHECKS.get(name)
            except RegistryError as exc:
                raise ConfigError(f"doctor.disable: {exc}") from None
        names = [] if not self.cfg.enabled else CHECKS.names()
        self.checks: list[Check] = [CHECKS.get(n) for n in names if n not in self.cfg.disable]
        self.history: list[dict[str, Any]] = []
        self._tally: dict[tuple[str, str], ReportEntry] = {}
        self._seen_metrics: set[str] = set()
        self._stopped: Finding | None = None

    def observe(self, row: Mapping[str, Any]) -> list[Finding]:
        """Check one step's row; returns its warnings, raises `TrainingStopped` on a fatal one."""
        if self._stopped is not None:
            raise R1LabError(
                f"the run doctor already stopped this run at step {self._stopped.step}; "
                "it takes no more steps"
            )
        findings: list[Finding] = []
        for check in self.checks:
            findings += check(row, self.history, self.cfg)
        first_row = not self.history
        self.history.append(dict(row))
        self._seen_metrics.update(row)
        if first_row:
            for name in self.unchecked():
                metrics = ", ".join(CHECKS.get(name).metrics)
                self.log(f"doctor: the step rows carry no {metrics}; check {name!r} is not running")
        for f in findings:
            self._count(f)
        fatal = next((f for f in findings if f.level == "fatal"), None)
        if fatal is not None:
            self._stopped = fatal
            raise TrainingStopped(fatal, self.report())
        return findings

    @contextmanager
    def recording(self, out_dir: Path) -> Iterator[RunDoctor]:
        """``with doctor.recording(run_dir):`` saves the report there on exit, stopped or not."""
        try:
            yield self
        finally:
            self.report().save(out_dir)

    def unchecked(self) -> list[str]:
        """Enabled checks none of whose metrics has appeared in the rows so far."""
        return [c.name for c in self.checks if not self._seen_metrics.intersection(c.metrics)]

    def report(self) -> DoctorReport:
        return DoctorReport(
            steps=len(self.history),
            entries=tuple(self._tally[k] for k in sorted(self._tally)),
            stopped=None if self._stopped is None else self._stopped.message,
            unchecked=tuple(self.unchecked()) if self.history else (),
        )

    def _count(self, f: Finding) -> None:
        key = (f.check, f.level)
        old = self._tally.get(key)
        if old is None:
            self._tally[key] = ReportEntry(
                f.check, f.level, 1, f.step, f.step, f.message, f.message
            )
            if f.level == "warning":
                self.log(
                    f"doctor: warning [{f.check}] at step {f.step}: {f.message} "
                    "(later ones are counted in doctor.md)"
                )
            return
        self._tally[key] = ReportEntry(
            f.check, f.level, old.count + 1, old.first_step, f.step, old.first_message, f.message
        )
