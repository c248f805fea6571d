"""Progress with ETA for every long operation: a rich bar on a terminal, periodic plain lines
(about every 10%, with elapsed time and ETA) when output goes to a file or CI log."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def progress_bar(description: str, total: int, enabled: bool = True):
    """Yields ``advance(n=1, info=None)``; a no-op callable when disabled."""
    if not enabled:
        yield lambda n=1, info=None: None
        return
    if not Console(file=sys.stderr).is_terminal:
        yield _line_progress(description, total)
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
    ) as prog:
        task = prog.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str | None = None) -> None:
            if info is None:
                prog.update(task, advance=n)
            else:
                prog.update(task, advance=n, info=info)

        yield advance


def _line_progress(description: str, total: int):
    start = time.time()
    state = {"done": 0, "next": max(1, total // 10)}

    def advance(n: int = 1, info: str | None = None) -> None:
        state["done"] += n
        done = state["done"]
        if done >= state["next"] or done == total:
            state["next"] = done + max(1, total // 10)
            elapsed = time.time() - start
            eta = elapsed / done * (total - done) if done else 0.0
            extra = f" {info}" if info else ""
            print(
                f"[{description}] {done}/{total} elapsed {elapsed:.0f}s eta {eta:.0f}s{extra}",
                file=sys.stderr,
                flush=True,
            )

    return advance
