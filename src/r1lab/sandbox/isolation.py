"""Choosing and building the isolation around one execution.

Backends:
- ``bwrap``: bubblewrap puts the program in fresh user, mount, PID, network, IPC, UTS and cgroup
  namespaces. The filesystem it sees is ``/usr`` (+ the ``/bin``, ``/lib*`` links) and
  ``/etc/ld.so.cache`` read-only, a new ``/proc`` and minimal ``/dev``, and two size-capped tmpfs
  (``/work`` = its working dir, ``/tmp``); the root itself is read-only. No network device but
  loopback. bwrap's PID 1 dies with bwrap (``--die-with-parent``), and when PID 1 of a PID
  namespace dies the kernel kills every process in it, so killing bwrap kills the whole tree,
  ``setsid`` grandchildren included.
- ``none``: the weak mode a user must opt in to. A temp dir, rlimits, a scrubbed environment and a
  process group, nothing else: the program sees the host's files and network.

In both, the program runs under ``prlimit`` (CPU, address space, file size, open files, process
count, no core dumps) and ``setpriv --no-new-privs``; when r1lab runs as root, setpriv also drops
to ``sandbox_uid`` first, because the kernel exempts root from the process-count limit. Inside
bwrap the process-count limit is counted per user namespace, so sandboxes do not share it.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from r1lab.errors import ConfigError, R1LabError
from r1lab.sandbox.config import SandboxConfig
from r1lab.sandbox.languages import Language

log = logging.getLogger(__name__)

ALLOW_ENV = "R1LAB_SANDBOX_ALLOW_UNISOLATED"
TOOL_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
_SYSTEM_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")


class SandboxUnavailableError(R1LabError):
    """No isolation mechanism works here and the user did not opt in to running without one."""


@dataclass(frozen=True)
class Backend:
    """A working isolation mechanism: ``name`` is ``bwrap`` or ``none``."""

    name: str
    drop_to_uid: int | None
    bwrap_path: str | None = None

    def describe(self) -> str:
        who = f"uid {self.drop_to_uid}" if self.drop_to_uid is not None else "the current user"
        if self.name == "bwrap":
            return f"bwrap ({self.bwrap_path}): user/mount/pid/net/ipc/uts namespaces, as {who}"
        return f"none: rlimits, temp dir and scrubbed env only, as {who} (NOT isolated)"


def find_tool(name: str) -> str:
    """Absolute resolved path of a util-linux tool the sandbox needs, or a clear error."""
    found = shutil.which(name, path=TOOL_PATH)
    if found is None:
        raise SandboxUnavailableError(
            f"the sandbox needs {name!r} (Debian package util-linux) in {TOOL_PATH}"
        )
    return str(Path(found).resolve())


def privilege_prefix(backend: Backend) -> list[str]:
    """``setpriv`` argv: no setuid escalation; and drop root first when we are root."""
    argv = [find_tool("setpriv"), "--no-new-privs"]
    if backend.drop_to_uid is not None:
        uid = backend.drop_to_uid
        argv += [f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    return argv + ["--"]


def limits_prefix(cfg: SandboxConfig) -> list[str]:
    """``prlimit`` argv setting soft = hard limits, so the program cannot raise them.

    The CPU limit is hard too: the kernel SIGKILLs at it (a soft SIGXCPU would be ignored, as the
    program is PID 1 of its namespace, and could be caught).
    """
    cpu = cfg.cpu_limit_s
    return [
        find_tool("prlimit"),
        f"--cpu={cpu}",
        f"--as={cfg.memory_mb * 2**20}",
        f"--fsize={cfg.max_file_mb * 2**20}",
        f"--nofile={cfg.max_open_files}",
        f"--nproc={cfg.max_processes}",
        "--core=0",
        "--",
    ]


def sandbox_env(home: str, tmp: str) -> dict[str, str]:
    """The whole environment the program sees: nothing is inherited from the caller."""
    return {"PATH": SANDBOX_PATH, "HOME": home, "TMPDIR": tmp, "LANG": "C.UTF-8"}


def check_reachable(path: str, uid: int | None) -> None:
    """ConfigError unless ``uid`` (the uid root drops to) can reach ``path`` through its parents."""
    if uid is None:
        return
    for parent in list(Path(path).parents)[:-1]:
        st = parent.stat()
        if not (st.st_mode & stat.S_IXOTH or (st.st_uid == uid and st.st_mode & stat.S_IXUSR)):
            raise ConfigError(
                f"{path} is not reachable by uid {uid} (the sandbox drops root to it): {parent} "
                "is not world-searchable; use a system interpreter (sandbox.python=/usr/bin/python3)"
            )


def _checked_command(backend: Backend, cfg: SandboxConfig, lang: Language) -> list[str]:
    argv = lang.argv(cfg)
    for path in [argv[0], *lang.host_dirs(cfg)]:
        check_reachable(path, backend.drop_to_uid)
    return argv


def _system_mounts() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_LINKS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for etc in _ETC_FILES:
        args += ["--ro-bind-try", etc, etc]
    return args


def bwrap_argv(
    backend: Backend,
    cfg: SandboxConfig,
    lang: Language,
    files: list[tuple[int, str]],
    status_fd: int,
) -> list[str]:
    """The full command line: setpriv, bwrap with its mounts, prlimit, the language's command.

    ``files`` are (fd, name) pairs bwrap copies into ``/work``; ``status_fd`` receives bwrap's
    JSON status (an ``exit-code`` record appears only when the program itself ran to its end).
    """
    assert backend.bwrap_path is not None
    disk = str(cfg.disk_mb * 2**20)
    argv = privilege_prefix(backend) + [backend.bwrap_path]
    argv += ["--unshare-all", "--unshare-user", "--disable-userns"]
    argv += ["--as-pid-1", "--die-with-parent", "--new-session", "--json-status-fd", str(status_fd)]
    argv += _system_mounts()
    for d in lang.host_dirs(cfg):
        argv += ["--ro-bind", d, d]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--size", disk, "--tmpfs", "/work", "--size", disk, "--tmpfs", "/tmp"]
    for fd, name in files:
        argv += ["--file", str(fd), f"/work/{name}"]
    # Last: nothing outside the two sized tmpfs stays writable (an unsized tmpfs is host RAM).
    argv += ["--remount-ro", "/dev", "--remount-ro", "/"]
    argv += ["--chdir", "/work", "--clearenv", "--hostname", "sandbox"]
    for key, value in sandbox_env("/work", "/tmp").items():
        argv += ["--setenv", key, value]
    return argv + ["--"] + limits_prefix(cfg) + _checked_command(backend, cfg, lang)


def none_argv(backend: Backend, cfg: SandboxConfig, lang: Language) -> list[str]:
    """The weak mode's command line (run with cwd = a fresh host temp dir)."""
    return privilege_prefix(backend) + limits_prefix(cfg) + _checked_command(backend, cfg, lang)


Probe = Callable[[Backend, SandboxConfig], "str | None"]
_cache: dict[tuple, Backend | SandboxUnavailableError] = {}
_lock = threading.Lock()
_warned: set[tuple] = set()


def _warn_once(key: tuple, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


def _bwrap_backend(
    cfg: SandboxConfig, drop: int | None, probe: Probe
) -> tuple[Backend | None, str]:
    path = shutil.which(cfg.bwrap)
    if path is None:
        return None, f"{cfg.bwrap!r} not found (apt-get install bubblewrap)"
    backend = Backend("bwrap", drop, str(Path(path).resolve()))
    problem = probe(backend, cfg)
    return (None, problem) if problem else (backend, "")


def select_backend(cfg: SandboxConfig, probe: Probe) -> Backend:
    """The backend for ``cfg`` (probed once per process and setting), or SandboxUnavailableError.

    ``probe(backend, cfg)`` runs a trivial program and returns None or what went wrong.
    """
    drop = cfg.sandbox_uid if os.geteuid() == 0 else None
    allow = os.environ.get(ALLOW_ENV, "") == "1"
    key = (cfg.isolation, cfg.bwrap, cfg.python, drop, allow)
    with _lock:
        cached = _cache.get(key)
        if isinstance(cached, SandboxUnavailableError):
            raise SandboxUnavailableError(str(cached))
        if cached is not None:
            return cached
        if cfg.isolation == "none":
            backend = Backend("none", drop)
            _warn_once(key, f"r1lab sandbox: isolation='none': {backend.describe()}")
        else:
            found, problem = _bwrap_backend(cfg, drop, probe)
            if found is not None:
                backend = found
            elif cfg.isolation == "auto" and allow:
                backend = Backend("none", drop)
                _warn_once(
                    key,
                    f"r1lab sandbox: bwrap unusable ({problem}); {ALLOW_ENV}=1, so running "
                    f"untrusted code with {backend.describe()}",
                )
            else:
                error = SandboxUnavailableError(
                    f"refusing to run untrusted code: no isolation works here (bwrap: {problem}); "
                    "install bubblewrap and allow user namespaces, or opt in to the weak mode "
                    f"with isolation='none' or {ALLOW_ENV}=1"
                )
                _cache[key] = error
                raise error
        _cache[key] = backend
        return backend


def reset_backend_cache() -> None:
    """Forget probed backends (tests; or after installing bubblewrap in a running process)."""
    with _lock:
        _cache.clear()
        _warned.clear()
