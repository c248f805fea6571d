"""Worker processes with a hard wall-clock limit per task, enforced from outside the task.

Why not ``signal.alarm`` (math-verify's own timeout) or ``concurrent.futures``: an alarm only works
in the main thread of the main interpreter (elsewhere it raises or, worse, is skipped), and a
C-level loop (a huge integer power in sympy) ignores it anyway; a ``ProcessPoolExecutor`` cannot
stop one running task. Here each task goes to one worker process; when its deadline passes the
parent kills that worker (SIGKILL) and starts a fresh one, and the task is reported as timed out.

Workers are started with ``subprocess`` (``python -m r1lab.rewards.pool_worker``), not
``multiprocessing``, so a pool also works inside a daemonic ``multiprocessing`` worker (which may
not have multiprocessing children), from any thread, and in a process that forked. A worker
imports its handler once, caps its address space (``memory_limit_mb``), runs in its own session
(a Ctrl-C at the terminal reaches the parent only) and exits when its parent goes away.

What this module does not do: retry tasks, or decide what a task means (the handler does).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from r1lab.errors import R1LabError

_SRC_DIR = str(Path(__file__).resolve().parents[2])  # the directory holding the r1lab package


class PoolError(R1LabError):
    """A worker could not be started (its handler failed to import, or it never became ready)."""


@dataclass(frozen=True)
class TaskOutcome:
    """What happened to one task: ``value`` when ``ok``; else ``error`` (``timed_out`` if killed)."""

    ok: bool
    value: Any = None
    error: str | None = None
    timed_out: bool = False
    seconds: float = 0.0


class _Worker:
    """One child process and the two pipes to it (tasks in, results out)."""

    def __init__(self, handler: str, memory_limit_mb: int) -> None:
        task_r, task_w = os.pipe()
        res_r, res_w = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SRC_DIR, env.get("PYTHONPATH")]))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "r1lab.rewards.pool_worker", handler]
                + [str(task_r), str(res_w), str(os.getpid()), str(memory_limit_mb)],
                pass_fds=(task_r, res_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        finally:
            os.close(task_r)
            os.close(res_w)
        self.tasks = Connection(task_w, readable=False)
        self.results = Connection(res_r, writable=False)
        self.started = time.monotonic()
        self.ready = False
        self.current: tuple[int, float] | None = None  # (task index, deadline)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for conn in (self.tasks, self.results):
            conn.close()

    def ask_to_stop(self) -> None:
        """None on the task pipe: an idle worker exits; a busy one is killed by `kill` later."""
        with contextlib.suppress(OSError):
            self.tasks.send(None)


class _Pending:
    """Task indices not yet handed out, grouped by affinity key.

    A worker takes tasks of a key it already ran first (its caches hold that key's work: the
    parsed gold answer, for math), then a key nobody ran yet, and only when neither is left a task
    of another worker's key, so no worker idles while tasks wait.
    """

    def __init__(self, n: int, affinity: Sequence[Hashable] | None) -> None:
        self.key_of = list(affinity) if affinity is not None else list(range(n))
        self.by_key: dict[Hashable, deque[int]] = {}
        for i in range(n):
            self.by_key.setdefault(self.key_of[i], deque()).append(i)
        self.fresh = deque(self.by_key)
        self.owned: dict[int, deque[Hashable]] = {}  # worker pid -> keys it took this run

    def __bool__(self) -> bool:
        return bool(self.by_key)

    def _take(self, key: Hashable) -> int:
        queue = self.by_key[key]
        i = queue.popleft()
        if not queue:
            del self.by_key[key]
        return i

    def requeue(self, i: int) -> None:
        """Give back a task that never reached a worker."""
        self.by_key.setdefault(self.key_of[i], deque()).appendleft(i)

    def pop(self, pid: int) -> int:
        keys = self.owned.setdefault(pid, deque())
        while keys:
            if keys[0] in self.by_key:
                return self._take(keys[0])
            keys.popleft()
        while self.fresh:
            key = self.fresh.popleft()
            if key in self.by_key:
                keys.append(key)
                return self._take(key)
        return self._take(next(iter(self.by_key)))


class WorkerPool:
    """``num_workers`` processes running ``handler`` ("package.module:function") on tasks.

    `run` hands out one task at a time per worker and returns one `TaskOutcome` per task, in
    order. A task still running ``timeout_s`` after it was handed out is killed with its worker.
    Calls from several threads are serialized; the pool is reused across calls until `close`.
    """

    def __init__(
        self,
        handler: str,
        num_workers: int = 2,
        memory_limit_mb: int = 2048,
        start_timeout_s: float = 120.0,
    ) -> None:
        if num_workers < 1:
            raise PoolError(f"num_workers must be >= 1, got {num_workers}")
        self.handler = handler
        self.num_workers = num_workers
        self.memory_limit_mb = memory_limit_mb
        self.start_timeout_s = start_timeout_s
        self.restarts = 0  # workers replaced after a timeout or a crash
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._closed = False
        self._start_failures = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        w = _Worker(self.handler, self.memory_limit_mb)
        self._workers.append(w)
        return w

    def _replace(self, w: _Worker) -> None:
        w.kill()
        self._workers.remove(w)
        self.restarts += 1
        self._spawn()

    def _check_start(self, w: _Worker) -> None:
        code = w.proc.poll()
        if code is not None and code < 0 and self._start_failures < 3:
            # killed by a signal while starting (the OOM killer, a stray kill): start another;
            # an exit code >= 0 is the worker's own failure (an import error) and is final
            self._start_failures += 1
            self._replace(w)
            return
        if code is not None:
            raise PoolError(
                f"reward worker for {self.handler!r} exited with code {w.proc.returncode} "
                "before it was ready (its traceback is on stderr)"
            )
        if time.monotonic() - w.started > self.start_timeout_s:
            raise PoolError(
                f"reward worker for {self.handler!r} not ready after {self.start_timeout_s:.0f} s"
            )

    def close(self) -> None:
        """Stop every worker. Safe to call twice; a forked child never touches its parent's pool."""
        if os.getpid() != self._pid:
            return
        with self._lock:
            for w in self._workers:
                w.ask_to_stop()
            deadline = time.monotonic() + 2.0
            for w in self._workers:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                w.kill()
            self._workers.clear()
            self._closed = True

    def start(self) -> None:
        """Start the workers now and wait until each is ready (`run` does this lazily)."""
        with self._lock:
            if self._closed:
                raise PoolError("this WorkerPool is closed")
            while len(self._workers) < self.num_workers:
                self._spawn()
            while not all(w.ready for w in self._workers):
                for w in [w for w in self._workers if not w.ready]:
                    self._check_start(w)
                waiting = [w.results for w in self._workers if not w.ready]
                for conn in wait(waiting, timeout=0.05):
                    w = next(w for w in self._workers if w.results is conn)
                    self._receive(w, [], {})

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    # -- running -------------------------------------------------------------------------------
    def run(
        self,
        tasks: Sequence[Any],
        timeout_s: float,
        affinity: Sequence[Hashable] | None = None,
    ) -> list[TaskOutcome]:
        """Run every task; never raises for a task's failure (only `PoolError` for the pool).

        Shapes: tasks (N,), affinity (N,) or None -> (N,) outcomes in task order. Tasks with equal
        ``affinity`` keys go to the same worker when that keeps no worker idle.
        """
        if affinity is not None and len(affinity) != len(tasks):
            raise PoolError(f"{len(affinity)} affinity keys for {len(tasks)} tasks")
        if not tasks:
            return []
        if timeout_s <= 0:
            raise PoolError(f"timeout_s must be > 0, got {timeout_s}")
        if os.getpid() != self._pid:
            raise PoolError("this WorkerPool belongs to another process (it was forked)")
        with self._lock:
            if self._closed:
                raise PoolError("this WorkerPool is closed")
            while len(self._workers) < self.num_workers:
                self._spawn()
            try:
                return self._run_locked(tasks, timeout_s, _Pending(len(tasks), affinity))
            except BaseException:
                # Interrupted mid-batch (KeyboardInterrupt, PoolError): workers may hold stale
                # tasks, so replace them all rather than mix old results into the next call.
                for w in list(self._workers):
                    w.kill()
                self._workers.clear()
                raise

    def _run_locked(self, tasks: Sequence[Any], timeout_s: float, pending: _Pending):
        out: list[TaskOutcome | None] = [None] * len(tasks)
        started: dict[int, float] = {}
        remaining = len(tasks)
        while remaining:
            now = time.monotonic()
            for w in list(self._workers):
                if not w.ready:
                    self._check_start(w)
                elif w.current is None and pending:
                    i = pending.pop(w.proc.pid)
                    try:
                        w.tasks.send((i, tasks[i]))
                    except OSError:  # the worker died while idle: the task never ran
                        pending.requeue(i)
                        self._replace(w)
                        continue
                    started[i] = now
                    w.current = (i, now + timeout_s)
            deadlines = [w.current[1] for w in self._workers if w.current]
            wait_s = max(0.0, min(deadlines) - now) if deadlines else 0.05
            for conn in wait([w.results for w in self._workers], timeout=wait_s):
                w = next(w for w in self._workers if w.results is conn)
                remaining -= self._receive(w, out, started)
            now = time.monotonic()
            for w in list(self._workers):
                if w.current and now >= w.current[1]:
                    i = w.current[0]
                    out[i] = TaskOutcome(
                        False,
                        error=f"timeout: no verdict within {timeout_s:g} s (worker killed)",
                        timed_out=True,
                        seconds=now - started[i],
                    )
                    remaining -= 1
                    self._replace(w)
        return out  # type: ignore[return-value]

    def _receive(self, w: _Worker, out: list, started: dict[int, float]) -> int:
        """Read one message from ``w``; returns how many tasks it finished (0 or 1)."""
        try:
            msg = w.results.recv()
        except (EOFError, OSError):
            if not w.ready:
                w.proc.wait()
                self._check_start(w)  # raises, or replaces a worker killed by a signal
                return 0
            code = w.proc.wait()
            done = 0
            if w.current:
                i = w.current[0]
                out[i] = TaskOutcome(
                    False,
                    error=f"worker died (exit code {code}) while checking this sample",
                    seconds=time.monotonic() - started[i],
                )
                done = 1
            self._replace(w)
            return done
        if msg == "ready":
            w.ready = True
            return 0
        i, ok, payload = msg
        if w.current is None or w.current[0] != i:  # cannot happen: one task in flight per worker
            raise PoolError(f"reward worker answered task {i} it was not running")
        w.current = None
        seconds = time.monotonic() - started[i]
        out[i] = (
            TaskOutcome(True, value=payload, seconds=seconds)
            if ok
            else TaskOutcome(False, error=payload, seconds=seconds)
        )
        return 1
