"""Keep freed memory in the process on glibc, so that training steps stop page-faulting.

A training step on the CPU allocates its activations (megabytes each) and frees them at the end
of the backward pass. glibc's malloc serves such blocks with ``mmap`` (above its mmap threshold)
or from the heap top, and gives freed memory back to the kernel (``munmap``, or trimming the heap
top). The next step then touches fresh pages, and every 4 KiB page costs a page fault: on the
GRPO benchmark's small configuration ~14,000 faults (~56 MiB of first touches) per update, and
elementwise ops on such fresh tensors run several times slower than on reused memory.

`keep_freed_memory` raises glibc's mmap threshold to its maximum (32 MiB) and its trim threshold
to 2 GiB (``mallopt(M_MMAP_THRESHOLD)``, ``mallopt(M_TRIM_THRESHOLD)``), the same effect as the
environment variables ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` that CPU tuning
guides for PyTorch recommend: freed blocks are reused by the next step instead of being
returned and faulted in again (faults per update: ~14,000 -> ~130). The process keeps its peak
heap instead of shrinking between steps. Off with ``R1LAB_CPU=off``; on a C library other than
glibc it does nothing (logged at debug level). Called by `r1lab.engines.cpu.enable`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes a C int


def _mallopt():
    """glibc's ``mallopt`` through ctypes, or None on another C library."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - present on glibc only
    except (OSError, AttributeError, TypeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return mallopt


def set_thresholds(mmap_bytes: int, trim_bytes: int) -> bool:
    """``mallopt(M_MMAP_THRESHOLD, mmap_bytes)`` and ``mallopt(M_TRIM_THRESHOLD, trim_bytes)``;
    True when glibc accepted both (False on another C library)."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    ok = mallopt(M_MMAP_THRESHOLD, mmap_bytes) == 1
    return mallopt(M_TRIM_THRESHOLD, trim_bytes) == 1 and ok


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's mmap/trim thresholds once per process; True when they were set."""
    from r1lab.engines.cpu import ENV, mode

    if mode() == "off":
        log.info("malloc tuning off (%s=off)", ENV)
        return False
    ok = set_thresholds(MMAP_THRESHOLD, TRIM_THRESHOLD)
    if ok:
        log.info("malloc tuning: mmap threshold 32 MiB, trim threshold 2 GiB")
    else:
        log.debug("malloc tuning: no glibc mallopt here")
    return ok
