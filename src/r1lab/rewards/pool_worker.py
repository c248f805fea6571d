"""The child side of `r1lab.rewards.pool.WorkerPool`: ``python -m r1lab.rewards.pool_worker``.

Arguments: ``handler`` ("package.module:function"), the task-pipe fd, the result-pipe fd, the
parent's pid and an address-space cap in MiB (0 = none). The worker imports the handler once,
says ``"ready"``, then answers ``(index, payload)`` messages with ``(index, ok, result or error)``
until it reads ``None`` or its parent is gone. It never decides about time: the parent kills it.
"""

from __future__ import annotations

import importlib
import os
import resource
import sys
import threading
import time
from multiprocessing.connection import Connection


def _exit_when_orphaned(parent_pid: int) -> None:
    """A worker stuck in a long check would outlive a killed parent; this thread prevents it."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(1)


def main(argv: list[str]) -> int:
    handler_name, task_fd, result_fd, parent_pid, memory_mb = argv
    if int(memory_mb) > 0:
        cap = int(memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    threading.Thread(target=_exit_when_orphaned, args=(int(parent_pid),), daemon=True).start()
    tasks = Connection(int(task_fd), writable=False)
    results = Connection(int(result_fd), readable=False)
    module_name, func_name = handler_name.split(":")
    handler = getattr(importlib.import_module(module_name), func_name)
    results.send("ready")
    while True:
        try:
            msg = tasks.recv()
        except EOFError:
            return 0
        if msg is None:
            return 0
        index, payload = msg
        try:
            reply = (index, True, handler(payload))
        except BaseException as exc:  # everything is reported to the parent, nothing raised
            reply = (index, False, f"{type(exc).__name__}: {str(exc)[:500]}")
        try:
            results.send(reply)
        except Exception as exc:  # an unpicklable result: report it instead
            results.send((index, False, f"unsendable result: {type(exc).__name__}: {exc}"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
