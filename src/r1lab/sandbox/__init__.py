"""Isolated execution of untrusted code: one program (`execute`) or many (`SandboxPool`).

Pure Python and the standard library (no torch); isolation comes from bubblewrap and util-linux
(`setpriv`, `prlimit`). What it protects against, and what it does not: docs/sandbox.md.
"""

from r1lab.sandbox.config import STATUSES, ExecResult, Program, SandboxConfig
from r1lab.sandbox.isolation import (
    ALLOW_ENV,
    Backend,
    SandboxUnavailableError,
    reset_backend_cache,
)
from r1lab.sandbox.languages import LANGUAGES, Language
from r1lab.sandbox.pool import SandboxPool, default_pool
from r1lab.sandbox.runner import execute

__all__ = [
    "ALLOW_ENV",
    "LANGUAGES",
    "STATUSES",
    "Backend",
    "ExecResult",
    "Language",
    "Program",
    "SandboxConfig",
    "SandboxPool",
    "SandboxUnavailableError",
    "default_pool",
    "describe_isolation",
    "execute",
    "reset_backend_cache",
]


def describe_isolation(config: SandboxConfig | None = None) -> str:
    """One line saying which isolation `execute` would use with ``config`` (probes once)."""
    from r1lab.sandbox.isolation import select_backend
    from r1lab.sandbox.runner import probe_backend

    return select_backend(config or SandboxConfig(), probe_backend).describe()
