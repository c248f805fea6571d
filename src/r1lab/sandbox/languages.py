"""How to run a program of each language inside the sandbox's working directory.

A `Language` names the file its source is written to and the command that runs it (an argv,
resolved on the host, valid inside the sandbox), plus any host directory outside ``/usr`` that the
command needs read-only. Python is the one registered today; a compiled language would add a
compile-then-run command (for example ``sh -c 'g++ main.cpp && ./a.out'``) the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from r1lab.errors import ConfigError
from r1lab.registry import Registry
from r1lab.sandbox.config import SandboxConfig

# The directories the sandbox shows read-only; interpreters found here need no extra bind.
SYSTEM_BIN_DIRS = ("/usr/local/bin", "/usr/bin", "/bin")


@dataclass(frozen=True)
class Language:
    name: str
    source_name: str
    argv: Callable[[SandboxConfig], list[str]]
    host_dirs: Callable[[SandboxConfig], list[str]]


LANGUAGES: Registry[Language] = Registry("sandbox language")


def resolve_python(cfg: SandboxConfig) -> str:
    """The interpreter's resolved absolute path: ``cfg.python`` or the first system ``python3``."""
    if cfg.python:
        path = Path(cfg.python)
        if not path.is_absolute():
            raise ConfigError(f"sandbox.python must be an absolute path, got {cfg.python!r}")
        if not os.access(path, os.X_OK):
            raise ConfigError(f"sandbox.python {cfg.python!r} is not an executable file")
        return str(path.resolve())
    for d in SYSTEM_BIN_DIRS:
        candidate = Path(d) / "python3"
        if os.access(candidate, os.X_OK):
            return str(candidate.resolve())
    raise ConfigError(
        "no python3 found in /usr/local/bin, /usr/bin or /bin; install one "
        "(apt-get install python3) or set sandbox.python to an interpreter's absolute path"
    )


def _python_argv(cfg: SandboxConfig) -> list[str]:
    # -E: ignore PYTHON* variables, -s: no user site-packages. Not -I, so that extra files in the
    # working directory stay importable (the script's directory is on sys.path).
    return [resolve_python(cfg), "-E", "-s", "main.py"]


def _python_dirs(cfg: SandboxConfig) -> list[str]:
    exe = Path(resolve_python(cfg))
    if str(exe).startswith("/usr/"):
        return []
    # e.g. /opt/py/bin/python3.11 -> /opt/py (holds lib/python3.11 and the shared library)
    return [str(exe.parent.parent)]


LANGUAGES.add("python", Language("python", "main.py", _python_argv, _python_dirs))
