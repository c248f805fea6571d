"""One execution: I/O, statuses, limits, measurements, and the refusal to run without isolation."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from r1lab.errors import ConfigError
from r1lab.sandbox import (
    ALLOW_ENV,
    STATUSES,
    Program,
    SandboxConfig,
    SandboxUnavailableError,
    execute,
    reset_backend_cache,
)


def test_stdin_stdout_and_stderr_are_separate(bwrap_cfg):
    src = "import sys\nprint(sys.stdin.read().upper(), end='')\nprint('warn', file=sys.stderr)\n"
    res = execute(Program(src, stdin="abc\ndef\n"), bwrap_cfg)
    assert (res.status, res.exit_code, res.signal) == ("ok", 0, None)
    assert res.stdout == "ABC\nDEF\n"
    assert res.stderr == "warn\n"
    assert res.isolation == "bwrap"


@pytest.mark.parametrize(
    ("src", "status", "exit_code"),
    [
        ("raise SystemExit(3)", "runtime_error", 3),
        ("raise ValueError('boom')", "runtime_error", 1),
        ("x = bytearray(10**10)", "memory_limit", 1),
        ("print('fine')", "ok", 0),
    ],
)
def test_status_and_exit_code(bwrap_cfg, src, status, exit_code):
    res = execute(Program(src), bwrap_cfg)
    assert (res.status, res.exit_code) == (status, exit_code)
    assert res.status in STATUSES


def test_working_dir_is_fresh_and_writable(bwrap_cfg):
    src = (
        "import os\nprint(sorted(os.listdir('.')), os.getcwd())\n"
        "open('note.txt', 'w').write('x')\nopen('/tmp/t.txt', 'w').write('y')\n"
    )
    first = execute(Program(src), bwrap_cfg)
    second = execute(Program(src), bwrap_cfg)
    assert first.status == second.status == "ok"
    assert first.stdout == second.stdout == "['main.py'] /work\n"  # nothing left from the first


def test_extra_files_are_importable(bwrap_cfg):
    prog = Program("import helper\nprint(helper.VALUE * 2)", files={"helper.py": "VALUE = 21\n"})
    res = execute(prog, bwrap_cfg)
    assert res.stdout == "42\n"


def test_environment_is_scrubbed(bwrap_cfg, monkeypatch):
    monkeypatch.setenv("R1LAB_SOMETHING", "1")
    res = execute(Program("import os\nprint(dict(sorted(os.environ.items())))"), bwrap_cfg)
    assert eval(res.stdout) == {
        "HOME": "/work",
        "LANG": "C.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PWD": "/work",  # set by bwrap --chdir
        "TMPDIR": "/tmp",
    }


def test_cpu_limit_stops_busy_loop_before_wall_timeout(bwrap_cfg):
    res = execute(Program("while True:\n    pass\n"), replace(bwrap_cfg, timeout_s=30.0, cpu_s=1.0))
    assert (res.status, res.signal) == ("timeout", 9)  # SIGKILL from the kernel
    assert res.wall_s < 15.0  # killed by the CPU limit, long before the wall timeout
    assert 0.9 <= res.cpu_s < 1.5


def test_process_count_limit(bwrap_cfg):
    src = (
        "import os, time\nn = 0\n"
        "for _ in range(200):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        time.sleep(5)\n        os._exit(0)\n"
        "    n += 1\n"
        "print(n)\n"
    )
    res = execute(Program(src), replace(bwrap_cfg, max_processes=16))
    assert res.status == "ok"
    assert 5 <= int(res.stdout) < 16
    assert res.wall_s < 3.0  # the sleeping children died with the program


def test_open_files_limit(bwrap_cfg):
    src = (
        "fs = []\ntry:\n    for i in range(1000):\n        fs.append(open(f'f{i}', 'w'))\n"
        "except OSError as e:\n    print(len(fs), e.errno)\n"
    )
    res = execute(Program(src), replace(bwrap_cfg, max_open_files=32))
    count, errno = res.stdout.split()
    assert int(count) < 32 and errno == "24"  # EMFILE


def test_file_size_limit(bwrap_cfg):
    src = "open('big', 'wb').write(b'x' * 8 * 2**20)\n"
    res = execute(Program(src), replace(bwrap_cfg, max_file_mb=4))
    assert res.status == "runtime_error"
    assert "File too large" in res.stderr


def test_measures_cpu_and_peak_memory(bwrap_cfg):
    """Measured from a fresh, small launching process (a big launcher hides the figure: None)."""
    import json
    import subprocess
    import sys

    src = "x = bytearray(150 * 2**20)\ny = 0\nfor i in range(3 * 10**6):\n    y += i\n"
    code = (
        "import json, sys; from dataclasses import replace;"
        "from r1lab.sandbox import Program, SandboxConfig, execute;"
        f"r = execute(Program({src!r}), SandboxConfig(timeout_s=20.0, memory_mb=256, isolation='bwrap'));"
        "print(json.dumps(r.verdict()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    verdict = json.loads(out.stdout.strip().splitlines()[-1])
    assert verdict["status"] == "ok"
    assert 150 <= verdict["peak_memory_mb"] < 256
    res = execute(Program(src), replace(bwrap_cfg, timeout_s=20.0))
    assert res.status == "ok"
    assert res.peak_memory_mb is None or 150 <= res.peak_memory_mb < 256
    assert res.cpu_s > 0.05
    assert res.wall_s >= res.cpu_s * 0.5


def test_output_cap_truncates_and_kills(bwrap_cfg):
    res = execute(Program("print('y' * 5000)"), replace(bwrap_cfg, max_output_bytes=1000))
    assert res.status == "output_limit" and res.stdout_truncated
    assert res.stdout == "y" * 1000


def test_closing_its_pipes_does_not_end_supervision(bwrap_cfg, ns_processes):
    src = (
        "import os, time\nprint('NS', os.readlink('/proc/self/ns/pid'), flush=True)\n"
        "os.close(1)\nos.close(2)\ntime.sleep(60)\n"
    )
    res = execute(Program(src), replace(bwrap_cfg, timeout_s=1.0))
    assert res.status == "timeout" and 1.0 <= res.wall_s < 2.5
    assert not ns_processes(res.stdout.split()[1])


def test_verdict_json_fields(bwrap_cfg):
    verdict = execute(Program("print('a' * 50)"), bwrap_cfg).verdict(head_chars=10)
    assert verdict["status"] == "ok" and verdict["exit_code"] == 0
    assert verdict["stdout_head"] == "a" * 10 and verdict["stdout_truncated"]
    assert {"wall_s", "cpu_s", "peak_memory_mb", "stderr_head", "isolation"} <= set(verdict)


def test_refuses_without_isolation_unless_opted_in(monkeypatch, caplog):
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    reset_backend_cache()
    cfg = SandboxConfig(bwrap="/nonexistent/bwrap")
    with pytest.raises(SandboxUnavailableError) as err:
        execute(Program("print(1)"), cfg)
    message = str(err.value)
    assert "\n" not in message and ALLOW_ENV in message and "isolation='none'" in message

    monkeypatch.setenv(ALLOW_ENV, "1")
    with caplog.at_level(logging.WARNING, logger="r1lab.sandbox"):
        res = execute(Program("print(1)"), cfg)
    assert (res.status, res.stdout, res.isolation) == ("ok", "1\n", "none")
    assert len(caplog.records) == 1 and "NOT isolated" in caplog.records[0].getMessage()
    reset_backend_cache()


def test_explicit_none_mode_runs_with_limits(monkeypatch):
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    cfg = SandboxConfig(isolation="none", timeout_s=1.0)
    res = execute(Program("import os\nprint(sorted(os.environ))"), cfg)
    assert res.isolation == "none" and res.stdout.strip() == "['HOME', 'LANG', 'PATH', 'TMPDIR']"
    assert execute(Program("import time\ntime.sleep(30)"), cfg).status == "timeout"


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout_s": 0}, {"memory_mb": -1}, {"isolation": "docker"}, {"sandbox_uid": 0}],
)
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(ConfigError):
        SandboxConfig(**kwargs)


def test_bad_file_name_and_language_are_rejected(bwrap_cfg):
    with pytest.raises(ConfigError):
        Program("print(1)", files={"../escape.py": ""})
    with pytest.raises(KeyError, match="known: python"):
        execute(Program("print(1)", language="cobol"), bwrap_cfg)
