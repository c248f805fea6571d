"""The bounded pool: order, bounded parallelism, and an overall deadline nobody can outlast."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from r1lab.errors import ConfigError
from r1lab.sandbox import Program, SandboxConfig, SandboxPool, SandboxUnavailableError


def test_results_come_back_in_input_order(bwrap_cfg):
    with SandboxPool(workers=2) as pool:
        results = pool.run_many([Program(f"print({i} * {i})") for i in range(6)], bwrap_cfg)
    assert [r.stdout.strip() for r in results] == [str(i * i) for i in range(6)]


def test_parallelism_is_bounded_by_workers(bwrap_cfg):
    progs = [Program("import time\ntime.sleep(0.6)")] * 4
    with SandboxPool(workers=2) as pool:
        t0 = time.monotonic()
        results = pool.run_many(progs, bwrap_cfg)
        wall = time.monotonic() - t0
    assert all(r.status == "ok" for r in results)
    assert 1.2 <= wall < 3.0  # two rounds of two, not one round of four, not four rounds


def test_deadline_returns_on_time_and_kills_everything(bwrap_cfg, ns_processes):
    src = "import os\nprint('NS', os.readlink('/proc/self/ns/pid'), flush=True)\nimport time\ntime.sleep(60)"
    cfg = replace(bwrap_cfg, timeout_s=60.0)
    with SandboxPool(workers=2) as pool:
        t0 = time.monotonic()
        results = pool.run_many([Program(src)] * 5, cfg, deadline_s=1.0)
        wall = time.monotonic() - t0
    assert wall < 3.0
    assert [r.status for r in results] == ["cancelled"] * 5
    for r in results:
        for line in r.stdout.splitlines():
            assert not ns_processes(line.split(" ", 1)[1])


def test_per_program_configs(bwrap_cfg):
    progs = [Program("import time\ntime.sleep(2)")] * 2
    cfgs = [replace(bwrap_cfg, timeout_s=0.5), replace(bwrap_cfg, timeout_s=5.0)]
    with SandboxPool(workers=2) as pool:
        assert [r.status for r in pool.run_many(progs, cfgs)] == ["timeout", "ok"]
        with pytest.raises(ConfigError, match="2 programs but 1"):
            pool.run_many(progs, cfgs[:1])


def test_setup_errors_are_raised_not_hidden(monkeypatch):
    monkeypatch.delenv("R1LAB_SANDBOX_ALLOW_UNISOLATED", raising=False)
    with SandboxPool(workers=1) as pool, pytest.raises(SandboxUnavailableError):
        pool.run_many([Program("print(1)")], SandboxConfig(bwrap="/nonexistent/bwrap"))


def test_pool_needs_a_worker():
    with pytest.raises(ConfigError):
        SandboxPool(workers=0)
