"""Task handlers for the WorkerPool tests (imported inside pool workers via PYTHONPATH)."""

from __future__ import annotations

import os
import time


def run(task):
    kind, arg = task
    if kind == "echo":
        return arg
    if kind == "sleep":
        time.sleep(arg)
        return arg
    if kind == "raise":
        raise ValueError(arg)
    if kind == "exit":
        os._exit(arg)
    if kind == "alloc_mb":
        return len(bytearray(arg * 1024 * 1024))
    if kind == "pid":
        return os.getpid()
    raise KeyError(kind)
