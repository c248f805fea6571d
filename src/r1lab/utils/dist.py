"""Rank/world helpers for runs under ``torchrun``: process-group setup, object collectives, the
rank-sharding of a step's prompts, and the reduction of per-rank metrics rows.

A single process (no ``WORLD_SIZE`` > 1 in the environment) is world 1, rank 0: every helper is
then a no-op that returns its input, so the pipelines call them unconditionally. The rule that
keeps multi-process runs from hanging: every rank reaches every collective, in the same order;
a rank whose local work fails reports the failure through `agree`, so all ranks raise together
instead of one rank leaving the others waiting in a collective.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from r1lab.errors import ConfigError, R1LabError

T = TypeVar("T")


class RankFailed(R1LabError):
    """Another rank failed during a step; this rank stops with it (its message is attached)."""


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def init_from_env(backend: str = "auto", timeout_s: int = 600) -> bool:
    """Join the process group that ``torchrun`` describes in the environment.

    Returns True when this call created the group (the caller then calls `shutdown`), False for
    a single process or when a group already exists (a test harness made it).
    """
    if is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ConfigError(f"dist.backend must be auto, gloo or nccl, got {backend!r}")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return True


def shutdown(*, completed: bool = True) -> None:
    """Leave the process group. `completed`: every rank got here after the same last
    collective (the normal end of a run), so they first meet in a barrier.

    Why a rank could abort at exit ("terminate called without an active exception", SIGABRT, no
    traceback): gloo runs each collective on a worker thread, which destroys the collective's
    `Work` when it is done. The `Work` of an ``all_gather_object`` holds tensors that Python
    created, and dropping them needs the GIL. ``destroy_process_group`` does not stop gloo's
    threads (C++ still references the group), so a rank that reaches interpreter shutdown a few
    milliseconds after its last collective (a non-main rank: it has no files to write) can leave
    a worker waiting for the GIL during finalization; CPython then ends that thread with a
    forced unwind through the destructor: ``std::terminate``. The barrier puts every rank at
    the end together; the pause after it releases the GIL so the workers finish dropping the
    last works (a barrier's `Work` keeps the works it waited on) while the interpreter is alive.
    After a failure (`completed` False) the ranks may stand at different collectives: no
    barrier, a failing rank must not wait for one the others never reach.
    """
    if not is_initialized():
        return
    if completed:
        dist.barrier()
    dist.destroy_process_group()
    time.sleep(_DRAIN_S)  # GIL released: gloo's workers drop their last works (see above)


_DRAIN_S = 0.2


@contextlib.contextmanager
def process_group(backend: str = "auto", timeout_s: int = 600) -> Iterator[None]:
    """`init_from_env` for the block and, if that created the group, `shutdown` after it
    (``completed`` unless the block raised). A no-op in one process or inside a group."""
    owns_group = init_from_env(backend, timeout_s)
    try:
        yield
    except BaseException:
        if owns_group:
            shutdown(completed=False)
        raise
    if owns_group:
        shutdown()  # every rank finished: they meet in a barrier first (see shutdown)


def device() -> torch.device:
    """This rank's device: its GPU under nccl, else the CPU."""
    if is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_objects(obj: T) -> list[T]:
    """Every rank's `obj`, in rank order, on every rank."""
    if not is_initialized():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: T, src: int = 0) -> T:
    if not is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_sum(values: list[float]) -> list[float]:
    """Element-wise sum over ranks (float64, so counts stay exact)."""
    if not is_initialized():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device())
    dist.all_reduce(t)
    return t.cpu().tolist()


def agree(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run this rank's ``fn(*args, **kwargs)``; if it raised on ANY rank, raise on every rank (no
    rank is left waiting in a later collective). The failing rank re-raises its own exception."""
    if not is_initialized():
        return fn(*args, **kwargs)
    try:
        result, err = fn(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - re-raised below, on every rank
        result, err = None, exc
    failures = gather_objects(None if err is None else f"{type(err).__name__}: {err}")
    if err is not None:
        raise err
    bad = next(((r, m) for r, m in enumerate(failures) if m is not None), None)
    if bad is not None:
        raise RankFailed(f"rank {bad[0]} failed, so rank {rank()} stops too: {bad[1]}")
    return result  # type: ignore[return-value]


def shard_slice(n: int, what: str = "items") -> slice:
    """This rank's contiguous share of `n` items; `n` must divide evenly over the ranks."""
    w, r = world_size(), rank()
    if n % w:
        raise ConfigError(f"{what}={n} must be divisible by the number of processes ({w})")
    k = n // w
    return slice(r * k, (r + 1) * k)


def gather_rows(x_BT: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows in rank order, right-padding T with zeros.

    Shapes: x_BT (B_r, T_r) on rank r -> (sum_r B_r, max_r T_r) on every rank.
    """
    if not is_initialized():
        return x_BT
    parts = gather_objects(x_BT.detach().cpu())
    T = max(p.size(1) for p in parts)
    return torch.cat([torch.nn.functional.pad(p, (0, T - p.size(1))) for p in parts])


def on_global_batch(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x_B: torch.Tensor,
    mask_BT: torch.Tensor,
) -> torch.Tensor:
    """Apply `fn(x, mask)` to the batch of ALL ranks and return this rank's rows: batch-wide
    statistics (REINFORCE++ whitening) then span every rank, exactly as in one process.

    Shapes: x_B (B_r,), mask_BT (B_r, T_r) -> fn's (B_r, T_r) rows of this rank.
    """
    if not is_initialized():
        return fn(x_B, mask_BT)
    sizes = gather_objects(x_B.numel())
    out = fn(torch.cat(gather_objects(x_B.detach().cpu())), gather_rows(mask_BT))
    start = sum(sizes[: rank()])
    return out[start : start + x_B.numel(), : mask_BT.size(1)]


SUMMED = ("loss", "reward_errors")


def reduce_rows(row: dict[str, Any], weight: float = 1.0) -> dict[str, Any]:
    """One metrics row from every rank's row, identical on every rank.

    ``*_max`` keys take the max, ``*_min`` the min, the `SUMMED` keys (the loss is each rank's
    share of the global loss) the sum, other numbers the `weight`-weighted mean over ranks
    (equal shares by default); non-numbers and values equal on all ranks are taken from rank 0.
    """
    if not is_initialized():
        return row
    rows = gather_objects((row, weight))
    total_w = sum(w for _, w in rows) or 1.0
    out: dict[str, Any] = {}
    for key, first in row.items():
        vals = [r.get(key, first) for r, _ in rows]
        if isinstance(first, bool) or not isinstance(first, int | float) or len(set(vals)) == 1:
            out[key] = first
        elif key.endswith("_max"):
            out[key] = max(vals)
        elif key.endswith("_min"):
            out[key] = min(vals)
        elif key in SUMMED:
            out[key] = sum(vals)
        else:
            out[key] = sum(v * w for v, (_, w) in zip(vals, rows, strict=True)) / total_w
    return out
