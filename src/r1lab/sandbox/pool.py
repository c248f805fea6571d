"""A bounded pool that runs many sandboxed programs in parallel, with an overall deadline.

Worker threads each drive one sandboxed process at a time (the process does the work; the thread
mostly waits in ``select``), so at most ``workers`` programs run at once however many are queued.
`run_many` returns by its deadline: when it passes, queued programs are dropped, running ones are
killed (their pumps check the shared cancel event every 50 ms), and both come back as
``cancelled``. Without a deadline every program still ends by its own wall-clock timeout.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
from collections.abc import Sequence

from r1lab.errors import ConfigError
from r1lab.sandbox.config import ExecResult, Program, SandboxConfig
from r1lab.sandbox.runner import execute

CANCEL_WAIT_S = 5.0  # after the deadline: time for killed programs to be reaped and reported


def default_workers() -> int:
    """One worker per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class SandboxPool:
    """``workers`` threads, each running one sandboxed program at a time."""

    def __init__(self, workers: int | None = None) -> None:
        n = default_workers() if workers is None else workers
        if n < 1:
            raise ConfigError(f"sandbox pool needs at least 1 worker, got {n}")
        self.workers = n
        self._executor = cf.ThreadPoolExecutor(max_workers=n, thread_name_prefix="r1lab-sandbox")

    def submit(
        self,
        program: Program,
        config: SandboxConfig | None = None,
        cancel: threading.Event | None = None,
    ) -> cf.Future[ExecResult]:
        return self._executor.submit(_run_one, program, config, cancel)

    def run_many(
        self,
        programs: Sequence[Program],
        configs: SandboxConfig | Sequence[SandboxConfig] | None = None,
        *,
        deadline_s: float | None = None,
    ) -> list[ExecResult]:
        """Run all ``programs`` (one config for all, or one each); results in input order.

        Returns within ``deadline_s`` (+ a few tenths of a second to kill what is running).
        Setup errors (no isolation, bad config) are raised, not returned.
        """
        if isinstance(configs, SandboxConfig) or configs is None:
            configs = [configs or SandboxConfig()] * len(programs)
        if len(configs) != len(programs):
            raise ConfigError(f"{len(programs)} programs but {len(configs)} sandbox configs")
        if deadline_s is not None and deadline_s <= 0:
            raise ConfigError(f"deadline_s must be > 0, got {deadline_s}")
        cancel = threading.Event()
        futures = [self.submit(p, c, cancel) for p, c in zip(programs, configs)]
        _, pending = cf.wait(futures, timeout=deadline_s)
        if pending:
            cancel.set()
            for fut in pending:
                fut.cancel()
            cf.wait(pending, timeout=CANCEL_WAIT_S)
        late = ExecResult("cancelled", error=f"overall deadline of {deadline_s} s passed")
        return [f.result() if f.done() and not f.cancelled() else late for f in futures]

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _run_one(
    program: Program, config: SandboxConfig | None, cancel: threading.Event | None
) -> ExecResult:
    if cancel is not None and cancel.is_set():
        return ExecResult("cancelled", error="the deadline passed before the program started")
    return execute(program, config, cancel=cancel)


_default: SandboxPool | None = None
_default_lock = threading.Lock()


def default_pool() -> SandboxPool:
    """The process-wide pool (created on first use, `default_workers()` threads)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SandboxPool()
        return _default
