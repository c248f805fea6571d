"""Issue 3: a pathological answer scores 0 with a timeout error within the limit while the rest
of the batch is graded normally, from the main thread, another thread and a worker process."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time

from r1lab.rewards.math import grade_answers, math_pool, shutdown_math_pool

LIMIT_S = 1.0
HUGE_POWER = "9^{9^{9^{9}}}"  # parses at once, then sympy's comparison never ends
DEEP_NESTING = "(" * 3000 + "1" + ")" * 3000  # the LaTeX parser never finishes
GOLDS = ["5", "\\frac{1}{2}", "5", "7", "\\sqrt{2}", "12"]
ANSWERS = [HUGE_POWER, "0.5", DEEP_NESTING, "7.0", "2^{1/2}", "13"]
EXPECTED = [0.0, 1.0, 0.0, 1.0, 1.0, 0.0]


def grade_batch() -> tuple[list[tuple[float, str | None, bool, float]], float]:
    t0 = time.monotonic()
    results = grade_answers(GOLDS, ANSWERS, timeout_s=LIMIT_S, cache=None)
    rows = [
        (r.score, r.error, bool(r.info.get("timeout")), r.info.get("seconds", 0.0)) for r in results
    ]
    return rows, time.monotonic() - t0


def check(rows) -> None:
    assert [r[0] for r in rows] == EXPECTED
    for i in (0, 2):  # the two pathological answers
        score, error, timed_out, seconds = rows[i]
        assert timed_out and error.startswith("timeout"), rows[i]
        assert LIMIT_S <= seconds < LIMIT_S + 0.5, rows[i]
    assert all(r[1] is None and not r[2] for i, r in enumerate(rows) if i not in (0, 2))


def test_pathological_answers_time_out_in_the_main_thread():
    restarts = math_pool().restarts
    rows, wall = grade_batch()
    check(rows)
    assert math_pool().restarts == restarts + 2
    assert wall < 60  # two limits plus two worker restarts, even on a loaded machine


def test_pathological_answers_time_out_in_a_thread():
    box = {}
    thread = threading.Thread(target=lambda: box.update(rows=grade_batch()[0]))
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()
    check(box["rows"])


def _in_child(queue) -> None:
    queue.put(grade_batch()[0])
    shutdown_math_pool()


def test_pathological_answers_time_out_in_a_daemonic_worker_process():
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_in_child, args=(queue,), daemon=True)  # may not fork children
    child.start()
    rows = queue.get(timeout=120)
    child.join(timeout=30)
    assert child.exitcode == 0
    check(rows)
