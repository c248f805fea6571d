"""Hostile programs, one property per test. Each must be contained: the sandbox reports a failure
(or, for a clean exit, kills what the program left behind) and the host is unaffected."""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest

from r1lab.sandbox import Program, execute

PROJECT_FILE = Path(__file__).resolve().parents[2] / "pyproject.toml"
# Printed first, so the host guard can look for processes left in the program's PID namespace.
NS_PRELUDE = "import os as _os\nprint('NS', _os.readlink('/proc/self/ns/pid'), flush=True)\n"


def run_hostile(source: str, cfg, **kw):
    return execute(Program(NS_PRELUDE + source, **kw), cfg)


def test_fork_bomb(bwrap_cfg, host_guard):
    src = "while True:\n    try:\n        _os.fork()\n    except OSError:\n        pass\n"
    t0 = time.monotonic()
    res = run_hostile(src, replace(bwrap_cfg, timeout_s=1.5))
    assert res.status == "timeout"
    assert time.monotonic() - t0 < 5.0
    host_guard.assert_unaffected(res.stdout)


def test_memory_bomb(bwrap_cfg, host_guard):
    src = "hog = []\nwhile True:\n    hog.append(bytearray(10**7))\n"
    res = run_hostile(src, bwrap_cfg)
    assert res.status == "memory_limit"
    assert res.peak_memory_mb is None or res.peak_memory_mb <= bwrap_cfg.memory_mb + 16
    host_guard.assert_unaffected(res.stdout)


def test_infinite_loop(bwrap_cfg, host_guard):
    res = run_hostile("while True:\n    pass\n", replace(bwrap_cfg, timeout_s=1.0))
    assert res.status == "timeout"
    assert res.wall_s < 2.5
    host_guard.assert_unaffected(res.stdout)


def test_children_left_running_after_exit_are_killed(bwrap_cfg, host_guard):
    src = (
        "import subprocess\n"
        "subprocess.Popen(['/usr/bin/python3', '-c', 'import os, time; os.fork() or os.setsid();"
        " time.sleep(60)'], start_new_session=True)\n"
        "time_left = 1\n"
    )
    res = run_hostile(src, replace(bwrap_cfg, timeout_s=10.0))
    assert res.status == "ok" and res.wall_s < 5.0  # not held up by the daemon
    host_guard.assert_unaffected(res.stdout)  # nothing left in its namespace


def test_one_gigabyte_of_output(bwrap_cfg, host_guard):
    src = "import sys\nchunk = 'x' * 2**20\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n"
    res = run_hostile(src, replace(bwrap_cfg, timeout_s=30.0))
    assert res.status == "output_limit" and res.stdout_truncated
    assert len(res.stdout.encode()) <= bwrap_cfg.max_output_bytes
    assert res.wall_s < 10.0
    host_guard.assert_unaffected(res.stdout)


@pytest.mark.parametrize("where", ["host_tmp", "/usr", "/", "/dev/shm", "/etc"])
def test_cannot_write_outside_working_dir(bwrap_cfg, host_guard, tmp_path, where):
    target = (
        tmp_path if where == "host_tmp" else Path(where)
    ) / f"r1lab-evil-{secrets.token_hex(4)}"
    res = run_hostile(f"open({str(target)!r}, 'w').write('pwned')\n", bwrap_cfg)
    assert res.status == "runtime_error"
    assert not target.exists()
    host_guard.assert_unaffected(res.stdout)


def test_cannot_delete_host_files(bwrap_cfg, host_guard):
    res = run_hostile(f"_os.remove({str(host_guard.canary)!r})\n", bwrap_cfg)
    assert res.status == "runtime_error"
    host_guard.assert_unaffected(res.stdout)  # checks the canary is still there, unchanged


@pytest.fixture()
def home_secret():
    token = secrets.token_hex(16)
    path = Path.home() / f".r1lab-sandbox-test-{token[:8]}"
    path.write_text(token)
    os.chmod(path, 0o644)  # readable by anyone on the host: only the sandbox should stop it
    yield path, token
    path.unlink()


def test_cannot_read_home_dir(bwrap_cfg, host_guard, home_secret):
    path, token = home_secret
    res = run_hostile(f"print(open({str(path)!r}).read())\n", bwrap_cfg)
    assert res.status == "runtime_error"
    assert token not in res.stdout
    host_guard.assert_unaffected(res.stdout)


def test_cannot_read_project_files(bwrap_cfg, host_guard):
    res = run_hostile(f"print(open({str(PROJECT_FILE)!r}).read())\n", bwrap_cfg)
    assert res.status == "runtime_error"
    assert "[project]" not in res.stdout
    host_guard.assert_unaffected(res.stdout)


def test_cannot_read_parent_environment(bwrap_cfg, host_guard, monkeypatch):
    token = secrets.token_hex(16)
    monkeypatch.setenv("R1LAB_TEST_SECRET", token)
    src = (
        "import glob\n"
        "print(dict(_os.environ))\n"
        "for p in glob.glob('/proc/*/environ'):\n"
        "    try:\n        print(open(p, 'rb').read())\n    except OSError:\n        pass\n"
        "print(_os.environ['R1LAB_TEST_SECRET'])\n"
    )
    res = run_hostile(src, bwrap_cfg)
    assert res.status == "runtime_error"  # KeyError: the variable is not there
    assert token not in res.stdout + res.stderr
    host_guard.assert_unaffected(res.stdout)


@pytest.mark.parametrize("target", ["host_loopback", "external"])
def test_no_network(bwrap_cfg, host_guard, target):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    addr = server.getsockname() if target == "host_loopback" else ("1.1.1.1", 53)
    try:
        res = run_hostile(
            f"import socket\nsocket.create_connection({addr!r}, timeout=1)\n", bwrap_cfg
        )
        assert res.status == "runtime_error"
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected
    finally:
        server.close()
    host_guard.assert_unaffected(res.stdout)


def test_cannot_signal_or_kill_parent(bwrap_cfg, host_guard):
    src = (
        "import signal\n"
        "hit = []\n"
        f"for pid, sig in (({os.getpid()}, signal.SIGUSR1), ({host_guard.sentinel.pid}, signal.SIGKILL),"
        " (_os.getppid(), signal.SIGKILL), (-1, signal.SIGKILL)):\n"
        "    try:\n        _os.kill(pid, sig)\n        hit.append(pid)\n    except OSError:\n        pass\n"
        "print('hit', hit)\n"
        "raise SystemExit(1)\n"
    )
    res = run_hostile(src, bwrap_cfg)
    assert res.status == "runtime_error"
    host_guard.assert_unaffected(res.stdout)


def test_cannot_raise_own_limits(bwrap_cfg, host_guard):
    src = (
        "import resource\n"
        "raised = []\n"
        "for lim in (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_NPROC):\n"
        "    try:\n"
        "        resource.setrlimit(lim, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
        "        raised.append(lim)\n"
        "    except (ValueError, OSError):\n        pass\n"
        "print('raised', raised)\n"
        "raise SystemExit(0 if raised else 1)\n"
    )
    res = run_hostile(src, bwrap_cfg)
    assert res.status == "runtime_error"
    assert "raised []" in res.stdout
    host_guard.assert_unaffected(res.stdout)


def test_sleeping_past_the_timeout(bwrap_cfg, host_guard):
    res = run_hostile("import time\ntime.sleep(60)\n", replace(bwrap_cfg, timeout_s=1.0))
    assert res.status == "timeout"
    assert 1.0 <= res.wall_s < 2.5
    host_guard.assert_unaffected(res.stdout)


def test_crashing_the_interpreter_with_ctypes(bwrap_cfg, host_guard):
    res = run_hostile("import ctypes\nctypes.string_at(0)\n", bwrap_cfg)
    assert res.status == "runtime_error"
    assert res.signal == 11  # SIGSEGV
    host_guard.assert_unaffected(res.stdout)


def test_cannot_fill_the_disk(bwrap_cfg, host_guard):
    src = (
        "block = b'x' * 2**20\n"
        "for i in range(10**6):\n"
        "    with open(f'f{i}', 'wb') as f:\n        f.write(block * 4)\n"
    )
    res = run_hostile(src, replace(bwrap_cfg, disk_mb=16))
    assert res.status == "runtime_error"
    assert "No space left on device" in res.stderr
    host_guard.assert_unaffected(res.stdout)
