"""Fixtures for the sandbox tests: a bwrap config (skipped with the reason where bwrap does not work)
and a host guard that checks, after a hostile program ran, that the host was not affected."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from r1lab.sandbox import SandboxConfig, SandboxUnavailableError, describe_isolation


@pytest.fixture(scope="session")
def bwrap_cfg() -> SandboxConfig:
    cfg = SandboxConfig(isolation="bwrap", timeout_s=2.0, memory_mb=256, max_output_bytes=2**20)
    try:
        describe_isolation(cfg)
    except SandboxUnavailableError as exc:
        pytest.skip(f"bubblewrap isolation does not work here: {exc}")
    return cfg


def processes_in_namespace(ns_link: str) -> list[int]:
    """Host pids whose PID namespace is ``ns_link`` (e.g. ``pid:[4026532181]``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "pid") == ns_link:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture()
def ns_processes():
    """`processes_in_namespace`, for tests that check nothing was left running."""
    return processes_in_namespace


@dataclass
class HostGuard:
    """A sacrificial host process, a SIGUSR1 trap on the test process, and a canary file."""

    sentinel: subprocess.Popen
    canary: Path
    signals: list[int] = field(default_factory=list)

    def assert_unaffected(self, stdout: str = "") -> None:
        time.sleep(0.05)  # let any signal sent to us arrive
        assert self.sentinel.poll() is None, "the sentinel host process was killed"
        assert not self.signals, f"the test process received signals {self.signals}"
        assert self.canary.read_text() == "canary", "the canary file was changed"
        assert subprocess.run(["true"]).returncode == 0, "the host can no longer start processes"
        for line in stdout.splitlines():
            if line.startswith("NS "):
                left = processes_in_namespace(line.split(" ", 1)[1])
                assert not left, f"processes left running in the sandbox: {left}"


@pytest.fixture()
def host_guard(tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("canary")
    sentinel = subprocess.Popen(["sleep", "600"])
    guard = HostGuard(sentinel, canary)
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: guard.signals.append(signum))
    try:
        yield guard
    finally:
        signal.signal(signal.SIGUSR1, previous)
        sentinel.kill()
        sentinel.wait()
