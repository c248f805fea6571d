"""What to run (`Program`), under which limits (`SandboxConfig`), and what came back (`ExecResult`).

Plain frozen dataclasses: no processes are started here. The statuses an execution can end in:

| status          | meaning                                                                   |
|-----------------|---------------------------------------------------------------------------|
| `ok`            | exited with code 0                                                        |
| `runtime_error` | non-zero exit or killed by a signal (crash, uncaught exception)           |
| `timeout`       | wall-clock timeout, or the CPU-seconds limit was hit                      |
| `memory_limit`  | the address-space limit was hit (MemoryError, bad_alloc, ENOMEM)          |
| `output_limit`  | stdout or stderr went over `max_output_bytes`; the program was killed     |
| `cancelled`     | the caller's deadline passed first (pool); the program was killed or never started |
| `sandbox_error` | the sandbox itself failed to start the program (see `error`)              |
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from r1lab.errors import ConfigError

Status = Literal[
    "ok", "runtime_error", "timeout", "memory_limit", "output_limit", "cancelled", "sandbox_error"
]
STATUSES: tuple[str, ...] = (
    "ok",
    "runtime_error",
    "timeout",
    "memory_limit",
    "output_limit",
    "cancelled",
    "sandbox_error",
)
Isolation = Literal["auto", "bwrap", "none"]


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and isolation for one execution. Every default lives here.

    ``cpu_s = 0`` means "the wall timeout, rounded up". ``memory_mb`` caps the address space
    (RLIMIT_AS), ``max_file_mb`` the size of any one written file (RLIMIT_FSIZE), ``disk_mb`` the
    size of each of the two in-memory filesystems (``/work``, ``/tmp``) the program may write to,
    ``max_processes`` the tasks (processes and threads) inside the sandbox (RLIMIT_NPROC).
    ``isolation``: ``auto`` uses bubblewrap when it works and otherwise refuses to run unless
    ``R1LAB_SANDBOX_ALLOW_UNISOLATED=1``; ``bwrap`` requires it; ``none`` opts in to the weak mode.
    ``python``: interpreter run inside the sandbox ("" = the first ``python3`` in /usr/local/bin,
    /usr/bin, /bin). ``sandbox_uid``: the unprivileged uid the program runs as when r1lab runs as
    root (it must not be 0: root is exempt from the process-count limit).
    """

    timeout_s: float = 10.0
    cpu_s: float = 0.0
    memory_mb: int = 1024
    max_output_bytes: int = 8 * 2**20
    max_file_mb: int = 16
    disk_mb: int = 64
    max_open_files: int = 64
    max_processes: int = 32
    isolation: Isolation = "auto"
    python: str = ""
    bwrap: str = "bwrap"
    sandbox_uid: int = 65534

    def __post_init__(self) -> None:
        positive = {
            "timeout_s": self.timeout_s,
            "memory_mb": self.memory_mb,
            "max_output_bytes": self.max_output_bytes,
            "max_file_mb": self.max_file_mb,
            "disk_mb": self.disk_mb,
            "max_open_files": self.max_open_files,
            "max_processes": self.max_processes,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"sandbox.{name} must be > 0, got {value!r}")
        if self.cpu_s < 0:
            raise ConfigError(f"sandbox.cpu_s must be >= 0 (0 = the timeout), got {self.cpu_s!r}")
        if self.isolation not in ("auto", "bwrap", "none"):
            raise ConfigError(
                f"sandbox.isolation must be 'auto', 'bwrap' or 'none', got {self.isolation!r}"
            )
        if self.sandbox_uid <= 0:
            raise ConfigError(f"sandbox.sandbox_uid must be a non-root uid, got {self.sandbox_uid}")

    @property
    def cpu_limit_s(self) -> int:
        """Whole CPU seconds for RLIMIT_CPU (soft = hard: SIGKILL when reached)."""
        return max(1, math.ceil(self.cpu_s or self.timeout_s))


@dataclass(frozen=True)
class Program:
    """Source code in one language, the bytes fed to its stdin, and extra working-dir files."""

    source: str
    language: str = "python"
    stdin: str | bytes = ""
    files: Mapping[str, str | bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.files:
            if not name or "/" in name or name in (".", ".."):
                raise ConfigError(f"sandbox file name {name!r} must be a plain file name")


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one execution. ``stdout``/``stderr`` hold at most ``max_output_bytes``.

    ``exit_code`` is the program's exit status (None when it never ran or we killed it);
    ``signal`` the signal that ended it, if any. ``cpu_s`` and ``peak_memory_mb`` cover the whole
    process tree that was reaped (user + system time; largest resident set).
    """

    status: Status
    exit_code: int | None = None
    signal: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_memory_mb: float | None = 0.0  # None: hidden by the launching process's own peak
    isolation: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def verdict(self, head_chars: int = 2000) -> dict[str, Any]:
        """The JSON-able summary `r1lab sandbox run` prints (stdout/stderr cut to ``head_chars``)."""
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "stdout_head": self.stdout[:head_chars],
            "stderr_head": self.stderr[:head_chars],
            "stdout_truncated": self.stdout_truncated or len(self.stdout) > head_chars,
            "stderr_truncated": self.stderr_truncated or len(self.stderr) > head_chars,
            "wall_s": round(self.wall_s, 4),
            "cpu_s": round(self.cpu_s, 4),
            "peak_memory_mb": (
                None if self.peak_memory_mb is None else round(self.peak_memory_mb, 2)
            ),
            "isolation": self.isolation,
            "error": self.error,
        }
