"""Run one untrusted program in the sandbox and report what happened.

`execute(program, config)` starts the program under the chosen isolation backend (see
`isolation.py`), feeds its stdin from an in-memory file, reads stdout and stderr up to the output
cap, and enforces the wall-clock timeout itself: on timeout, output overflow or cancellation it
SIGKILLs the process group, which with bwrap tears down the whole PID namespace. It always reaps
the process with ``wait4``, so CPU time and peak memory cover the reaped tree.

It does not decide whether the output is *right*: that is the reward's job (rewards/code.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace

from r1lab.sandbox.config import ExecResult, Program, SandboxConfig
from r1lab.sandbox.isolation import (
    Backend,
    bwrap_argv,
    none_argv,
    sandbox_env,
    select_backend,
)
from r1lab.sandbox.languages import LANGUAGES, Language

CHUNK = 1 << 16
POLL_S = 0.05  # how often a cancel event is checked while the program runs
EXIT_GRACE_S = 0.2  # after the program exits, how long leftovers may hold its pipes open
REAP_WAIT_S = 2.0  # after killing the sandbox's PID 1, how long bwrap gets to reap it and exit
_MEMORY_ERROR = re.compile(rb"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory")


@dataclass
class _Watch:
    """What supervising one process observed."""

    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    out_truncated: bool = False
    err_truncated: bool = False
    killed_for: str | None = None  # timeout | output_limit | cancelled
    wait_status: int = 0
    cpu_s: float = 0.0
    peak_memory_mb: float | None = 0.0
    wall_s: float = 0.0


def execute(
    program: Program, config: SandboxConfig | None = None, *, cancel: threading.Event | None = None
) -> ExecResult:
    """Run ``program`` under ``config`` (default limits); never raises for the program's sake.

    Raises SandboxUnavailableError when no isolation works and none was opted out of, and
    ConfigError for a bad setting; everything the program does ends up in the ExecResult.
    """
    cfg = config or SandboxConfig()
    backend = select_backend(cfg, probe_backend)
    return run_with_backend(backend, program, cfg, cancel=cancel)


def probe_backend(backend: Backend, cfg: SandboxConfig) -> str | None:
    """Run a trivial program with ``backend``; None if it works, else one line saying why not."""
    probe_cfg = replace(
        SandboxConfig(),
        python=cfg.python,
        bwrap=cfg.bwrap,
        sandbox_uid=cfg.sandbox_uid,
        isolation=cfg.isolation,
    )
    res = run_with_backend(backend, Program("print('r1lab-sandbox-ok')"), probe_cfg)
    if res.status == "ok" and res.stdout.strip() == "r1lab-sandbox-ok":
        return None
    lines = [ln for ln in (res.error or res.stderr).splitlines() if ln.strip()]
    detail = lines[-1][:300] if lines else f"status {res.status}"
    return f"{detail} (exit code {res.exit_code})"


def run_with_backend(
    backend: Backend,
    program: Program,
    cfg: SandboxConfig,
    *,
    cancel: threading.Event | None = None,
) -> ExecResult:
    lang = LANGUAGES.get(program.language)
    try:
        if backend.name == "bwrap":
            return _run_bwrap(backend, lang, program, cfg, cancel)
        return _run_unisolated(backend, lang, program, cfg, cancel)
    except OSError as exc:  # could not start it (fork/pipe failure): the sandbox's fault
        return ExecResult("sandbox_error", isolation=backend.name, error=f"{exc}")


def _as_bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


def _memfd(name: str, data: str | bytes) -> int:
    fd = os.memfd_create(f"r1lab-{name}")
    view = memoryview(_as_bytes(data))
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _run_bwrap(
    backend: Backend,
    lang: Language,
    program: Program,
    cfg: SandboxConfig,
    cancel: threading.Event | None,
) -> ExecResult:
    files = {lang.source_name: program.source, **program.files}
    with contextlib.ExitStack() as stack:
        fds: list[tuple[int, str]] = []
        for name, data in files.items():
            fd = _memfd(name, data)
            stack.callback(os.close, fd)
            fds.append((fd, name))
        stdin_fd = _memfd("stdin", program.stdin)
        stack.callback(os.close, stdin_fd)
        status_r, status_w = os.pipe()
        status = _BwrapStatus(status_r)
        stack.callback(status.close)
        try:
            argv = bwrap_argv(backend, cfg, lang, fds, status_w)
            pass_fds = [fd for fd, _ in fds] + [status_w]
            watch = _spawn_and_watch(argv, stdin_fd, pass_fds, "/", {}, cfg, cancel, status)
        finally:
            os.close(status_w)
    return _classify(watch, cfg, backend, ran=status.ran, signal_base=128)


class _BwrapStatus:
    """bwrap's ``--json-status-fd`` records: the sandbox's PID 1 and whether the program ran.

    Holding a pidfd on PID 1 lets us kill it directly and wait until it is gone; a PID
    namespace's init exits only after every other process in it has, so once the pidfd is
    readable nothing the program started is left running.
    """

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.pending = b""
        self.pidfd: int | None = None
        self.ran = False  # an "exit-code" record: the program itself ran to its end

    def read(self) -> bool:
        """Consume what is available; False once bwrap closed its end."""
        while True:
            try:
                data = os.read(self.fd, CHUNK)
            except BlockingIOError:
                return True
            if not data:
                return False
            self.pending += data
            while b"\n" in self.pending:
                line, self.pending = self.pending.split(b"\n", 1)
                with contextlib.suppress(ValueError):
                    self._record(json.loads(line))

    def _record(self, rec: dict) -> None:
        if "exit-code" in rec:
            self.ran = True
        if "child-pid" in rec and self.pidfd is None:
            pid, ns = int(rec["child-pid"]), rec.get("pid-namespace")
            with contextlib.suppress(OSError):
                pidfd = os.pidfd_open(pid)
                # Same process as announced (not a reused pid): it lives in the new namespace.
                if os.readlink(f"/proc/{pid}/ns/pid") == f"pid:[{ns}]":
                    self.pidfd = pidfd
                else:
                    os.close(pidfd)

    def kill_tree(self, wait_s: float = 5.0) -> None:
        """SIGKILL the sandbox's PID 1 and wait (bounded) until its namespace is empty."""
        if self.pidfd is None:
            return
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        select.select([self.pidfd], [], [], wait_s)

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
        os.close(self.fd)


def _run_unisolated(
    backend: Backend,
    lang: Language,
    program: Program,
    cfg: SandboxConfig,
    cancel: threading.Event | None,
) -> ExecResult:
    workdir = tempfile.mkdtemp(prefix="r1lab-sandbox-")
    try:
        files = {lang.source_name: program.source, **program.files}
        for name, data in files.items():
            with open(os.path.join(workdir, name), "wb") as f:
                f.write(_as_bytes(data))
        if backend.drop_to_uid is not None:
            for path in [workdir] + [os.path.join(workdir, n) for n in files]:
                os.chown(path, backend.drop_to_uid, backend.drop_to_uid)
        stdin_fd = _memfd("stdin", program.stdin)
        try:
            env = sandbox_env(workdir, workdir)
            argv = none_argv(backend, cfg, lang)
            watch = _spawn_and_watch(argv, stdin_fd, [], workdir, env, cfg, cancel)
        finally:
            os.close(stdin_fd)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _classify(watch, cfg, backend, ran=True, signal_base=None)


# Runs as: python -S -I -c _TRAMPOLINE REPORT_FD ARGV... Forks ARGV from this fresh, small
# interpreter, waits for it, writes "maxrss_kib cpu_s" to REPORT_FD and ends the way ARGV ended.
_TRAMPOLINE = """
import os, signal, sys
w = int(sys.argv[1])
pid = os.fork()
if pid == 0:
    os.close(w)
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, st, ru = os.wait4(pid, 0)
os.write(w, b"%d %f" % (ru.ru_maxrss, ru.ru_utime + ru.ru_stime))
os.close(w)
if os.WIFSIGNALED(st):
    signal.signal(os.WTERMSIG(st), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(st))
os._exit(os.waitstatus_to_exitcode(st) if os.WIFEXITED(st) else 1)
"""


def _spawn_and_watch(
    argv: list[str],
    stdin_fd: int,
    pass_fds: list[int],
    cwd: str,
    env: dict[str, str],
    cfg: SandboxConfig,
    cancel: threading.Event | None,
    status: _BwrapStatus | None = None,
) -> _Watch:
    start = time.monotonic()
    # A forked child inherits this process's RSS high-water mark (Linux keeps it across exec),
    # so the sandbox is started by a small trampoline that forks it from a fresh interpreter and
    # reports that child's own rusage (peak memory, CPU) on a pipe.
    report_r, report_w = os.pipe()
    tramp = [sys.executable, "-S", "-I", "-c", _TRAMPOLINE, str(report_w)]
    proc = subprocess.Popen(
        tramp + argv,
        stdin=stdin_fd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=[*pass_fds, report_w],
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    os.close(report_w)
    watch = _Watch()
    try:
        _pump(proc, cfg, cancel, start + cfg.timeout_s, watch, status)
    finally:
        if status is not None and watch.killed_for is not None:
            status.read()
            status.kill_tree()
            # bwrap reaps its PID 1 and exits on its own; killing it first would orphan a zombie.
            _wait_exit(proc.pid, REAP_WAIT_S)
        _kill_group(proc.pid)
        _, wait_status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(wait_status)
        proc.stdout.close()
        proc.stderr.close()
        if status is not None:
            status.read()
    watch.wall_s = time.monotonic() - start
    watch.wait_status = wait_status
    watch.cpu_s = usage.ru_utime + usage.ru_stime
    watch.peak_memory_mb = None  # unknown unless the trampoline reported it
    with os.fdopen(report_r, "rb") as f:
        report = f.read().split()
    if len(report) == 2:  # the trampoline's own child: bwrap (or the program) and its tree
        watch.peak_memory_mb = int(report[0]) / 1024.0  # Linux reports KiB
        watch.cpu_s = float(report[1])
    return watch


def _wait_exit(pid: int, timeout_s: float) -> None:
    """Wait (bounded) until our child ``pid`` exits, without reaping it."""
    pidfd = os.pidfd_open(pid)
    try:
        select.select([pidfd], [], [], timeout_s)
    finally:
        os.close(pidfd)


def _kill_group(pgid: int) -> None:
    # The group leader is not reaped yet, so the pgid cannot have been reused.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _pump(
    proc: subprocess.Popen,
    cfg: SandboxConfig,
    cancel: threading.Event | None,
    deadline: float,
    watch: _Watch,
    status: _BwrapStatus | None,
) -> None:
    """Read both pipes until they close after the process exits, or a limit says kill it."""
    pidfd = os.pidfd_open(proc.pid)
    sel = selectors.DefaultSelector()
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    bufs = {out_fd: watch.out, err_fd: watch.err}
    try:
        for fd in (out_fd, err_fd, pidfd):
            sel.register(fd, selectors.EVENT_READ)
        if status is not None:
            sel.register(status.fd, selectors.EVENT_READ)
        open_pipes, exited_at = 2, None
        while True:
            now = time.monotonic()
            # Done once it exited and its pipes closed (or leftovers kept them open too long);
            # closed pipes alone are not enough: a program can close them and keep running.
            if exited_at is not None and (open_pipes == 0 or now - exited_at >= EXIT_GRACE_S):
                return
            if now >= deadline:
                watch.killed_for = "timeout"
                return
            if cancel is not None and cancel.is_set():
                watch.killed_for = "cancelled"
                return
            wait = deadline - now if cancel is None else min(deadline - now, POLL_S)
            if exited_at is not None:
                wait = min(wait, exited_at + EXIT_GRACE_S - now)
            for key, _ in sel.select(max(wait, 0.0)):
                if key.fd == pidfd:
                    exited_at = time.monotonic()
                    sel.unregister(pidfd)
                    continue
                if status is not None and key.fd == status.fd:
                    if not status.read():
                        sel.unregister(status.fd)
                    continue
                chunk = os.read(key.fd, CHUNK)
                if not chunk:
                    sel.unregister(key.fd)
                    open_pipes -= 1
                    continue
                buf = bufs[key.fd]
                room = cfg.max_output_bytes - len(buf)
                buf += chunk[:room]
                if len(chunk) > room:
                    if key.fd == out_fd:
                        watch.out_truncated = True
                    else:
                        watch.err_truncated = True
                    watch.killed_for = "output_limit"
                    return
    finally:
        sel.close()
        os.close(pidfd)


def _classify(
    watch: _Watch,
    cfg: SandboxConfig,
    backend: Backend,
    *,
    ran: bool,
    signal_base: int | None,
) -> ExecResult:
    """Turn what was observed into a status. ``signal_base``: bwrap reports signal N as 128+N."""
    code: int | None = os.waitstatus_to_exitcode(watch.wait_status)
    sig: int | None = None
    if code is not None and code < 0:
        sig, code = -code, None
    elif signal_base is not None and code is not None and signal_base < code <= signal_base + 64:
        sig, code = code - signal_base, None
    error = None
    if watch.killed_for is not None:
        status = watch.killed_for
        code = sig = None
        if status == "cancelled":
            error = "cancelled: the caller's deadline passed while it ran"
    elif not ran:
        status = "sandbox_error"
        error = watch.err.decode(errors="replace").strip()[-500:] or "sandbox did not start"
    elif code == 0:
        status = "ok"
    elif sig == signal.SIGXCPU or (sig == signal.SIGKILL and watch.cpu_s >= 0.9 * cfg.cpu_limit_s):
        status = "timeout"  # the CPU limit (rusage runs a little behind the kernel's own clock)
    elif _MEMORY_ERROR.search(bytes(watch.err[-4096:])):
        status = "memory_limit"
    else:
        status = "runtime_error"
    return ExecResult(
        status=status,
        exit_code=code,
        signal=sig,
        stdout=watch.out.decode(errors="replace"),
        stderr=watch.err.decode(errors="replace"),
        stdout_truncated=watch.out_truncated,
        stderr_truncated=watch.err_truncated,
        wall_s=watch.wall_s,
        cpu_s=watch.cpu_s,
        peak_memory_mb=watch.peak_memory_mb,
        isolation=backend.name,
        error=error,
    )
