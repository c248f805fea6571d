"""WorkerPool: hard per-task time limit from outside, crashes and failures contained, reuse."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from r1lab.rewards.pool import PoolError, WorkerPool

HERE = Path(__file__).resolve().parent
HANDLER = "pool_handlers:run"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a killed child may linger as a zombie until reaped; count a zombie as dead
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


@pytest.fixture()
def pool(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    p = WorkerPool(HANDLER, num_workers=2, memory_limit_mb=512)
    yield p
    p.close()


def test_results_in_order_and_failures_contained(pool):
    tasks = [("echo", i) for i in range(20)] + [("raise", "bad input"), ("exit", 3), ("echo", 99)]
    out = pool.run(tasks, timeout_s=10.0)
    assert [o.value for o in out[:20]] == list(range(20))
    assert not out[20].ok and out[20].error == "ValueError: bad input"
    assert not out[21].ok and "worker died (exit code 3)" in out[21].error
    assert out[22].ok and out[22].value == 99
    assert pool.restarts == 1 and len(pool.pids) == 2


def test_timeout_kills_the_worker_and_the_rest_of_the_batch_goes_on(pool):
    pool.start()
    before = set(pool.pids)
    t0 = time.monotonic()
    out = pool.run([("sleep", 60), ("echo", 1), ("echo", 2), ("sleep", 0.1)], timeout_s=0.5)
    assert out[0].timed_out and not out[0].ok and "0.5 s" in out[0].error
    assert 0.5 <= out[0].seconds < 1.5
    assert [o.value for o in out[1:]] == [1, 2, 0.1]
    assert time.monotonic() - t0 < 30
    assert pool.restarts == 1
    killed = before - set(pool.pids)
    assert len(killed) == 1 and not alive(killed.pop())
    # the pool is reusable after a timeout
    assert [o.value for o in pool.run([("echo", "again")], timeout_s=10.0)] == ["again"]


def test_a_worker_killed_while_idle_is_replaced_and_its_task_still_runs(pool):
    pool.start()
    pids = pool.pids
    os.kill(pids[0], signal.SIGKILL)
    time.sleep(0.2)
    out = pool.run([("echo", i) for i in range(6)], timeout_s=10.0)
    assert [o.value for o in out] == list(range(6)) and all(o.ok for o in out)
    assert pool.restarts == 1 and pids[0] not in pool.pids


def test_a_worker_killed_while_starting_is_replaced(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    p = WorkerPool("pool_slow_start:run", num_workers=1)
    starting = threading.Thread(target=p.start)
    starting.start()
    time.sleep(0.3)  # the worker is inside its 1 s import
    victim = p.pids[0]
    os.kill(victim, signal.SIGKILL)
    starting.join(timeout=30)
    assert p.restarts == 1 and victim not in p.pids
    assert [o.value for o in p.run([("echo", 1), ("echo", 2)], timeout_s=10.0)] == [1, 2]
    p.close()


def test_memory_cap_is_reported_not_fatal(pool):
    out = pool.run([("alloc_mb", 2048), ("alloc_mb", 1)], timeout_s=10.0)
    assert not out[0].ok and out[0].error.startswith("MemoryError")
    assert out[1].value == 1024 * 1024


def test_close_stops_workers_and_refuses_new_work(pool):
    pool.run([("echo", 1)], timeout_s=10.0)
    pids = pool.pids
    pool.close()
    assert not any(alive(p) for p in pids)
    with pytest.raises(PoolError, match="closed"):
        pool.run([("echo", 1)], timeout_s=1.0)


def test_a_handler_that_cannot_import_fails_loudly(monkeypatch):
    p = WorkerPool("no_such_module_r1lab:run", num_workers=1)
    with pytest.raises(PoolError, match="exited with code 1"):
        p.run([1], timeout_s=1.0)
    p.close()


def test_bad_arguments():
    with pytest.raises(PoolError):
        WorkerPool(HANDLER, num_workers=0)
    with pytest.raises(PoolError):
        WorkerPool(HANDLER).run([1], timeout_s=0)


def test_workers_exit_when_their_parent_is_killed(tmp_path):
    script = (
        "import sys, time\n"
        "from r1lab.rewards.pool import WorkerPool\n"
        f"p = WorkerPool({HANDLER!r}, num_workers=2)\n"
        "p.run([('echo', 1)], timeout_s=30)\n"
        "print(*p.pids, flush=True)\n"
        "p.run([('sleep', 60), ('sleep', 60)], timeout_s=120)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(HERE))
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    pids = [int(x) for x in parent.stdout.readline().split()]
    assert len(pids) == 2 and all(alive(p) for p in pids)
    time.sleep(0.3)  # both workers are now inside a 60 s task
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)
