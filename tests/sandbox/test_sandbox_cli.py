"""``r1lab sandbox run FILE [--stdin FILE] [--timeout S] [--memory MB]`` and ``r1lab sandbox info``."""

from __future__ import annotations

import json
import subprocess
import sys

from r1lab.cli import main


def test_run_prints_json_verdict(bwrap_cfg, tmp_path, capsys):
    prog = tmp_path / "sum.py"
    prog.write_text("import sys\nprint(sum(int(t) for t in sys.stdin.read().split()))\n")
    inp = tmp_path / "in.txt"
    inp.write_text("1 2 3\n4\n")
    argv = ["sandbox", "run", str(prog), "--stdin", str(inp), "--timeout", "5"]
    # as a user runs it: a fresh, small process, so peak memory is measurable
    out = subprocess.run([sys.executable, "-m", "r1lab.cli", *argv], capture_output=True, text=True)
    verdict = json.loads(out.stdout)
    assert out.returncode == 0
    assert verdict["status"] == "ok" and verdict["stdout_head"] == "10\n"
    assert verdict["isolation"] == "bwrap" and verdict["peak_memory_mb"] > 0
    assert main(argv) == 0  # in-process too (pytest is big: peak memory may be None here)
    assert json.loads(capsys.readouterr().out)["stdout_head"] == "10\n"


def test_run_timeout_and_memory_flags(bwrap_cfg, tmp_path, capsys):
    loop = tmp_path / "loop.py"
    loop.write_text("import time\ntime.sleep(30)\n")
    assert main(["sandbox", "run", str(loop), "--timeout", "0.5"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "timeout"
    hog = tmp_path / "hog.py"
    hog.write_text("x = bytearray(300 * 2**20)\n")
    assert main(["sandbox", "run", str(hog), "--memory", "128"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "memory_limit"


def test_info_names_the_isolation(bwrap_cfg, capsys):
    assert main(["sandbox", "info"]) == 0
    assert capsys.readouterr().out.startswith("bwrap")


def test_missing_file_is_one_line_error(tmp_path, capsys):
    assert main(["sandbox", "run", str(tmp_path / "nope.py")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("r1lab: error: file not found") and err.count("\n") == 1
