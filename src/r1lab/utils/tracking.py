"""Run logging: ``metrics.jsonl`` and ``samples.jsonl`` always, TensorBoard and W&B when enabled.

Only the main rank writes (other ranks get a tracker that records nothing). On resume the JSONL
files are first cut back to the rows of the steps the checkpoint holds (a row written after the
checkpoint, before the kill, would otherwise appear twice), TensorBoard purges events from the
resumed step on, and W&B continues the same run id. TensorBoard uses PyTorch's own
``torch.utils.tensorboard.SummaryWriter``; wandb is imported only when enabled.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from r1lab.errors import R1LabError
from r1lab.utils import dist as rdist
from r1lab.utils.jsonl import JsonlWriter, read_jsonl


def truncate_jsonl(path: Path, steps_done: int) -> list[dict[str, Any]]:
    """Keep only rows with ``step < steps_done`` (atomic rewrite); returns the kept rows."""
    rows = [r for r in read_jsonl(path) if r.get("step", 0) < steps_done] if path.exists() else []
    tmp = path.with_name(f".{path.name}.tmp")
    with JsonlWriter(tmp, "w") as w:
        for r in rows:
            w.write(r)
    os.replace(tmp, path)
    return rows


def _tensorboard(log_dir: Path, purge_step: int | None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise R1LabError(
            "logging.tensorboard=true needs the tensorboard package: pip install 'r1lab[tensorboard]'"
        ) from None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


def _wandb(run_dir: Path, project: str, config: dict, run_id: str | None):
    try:
        import wandb
    except ImportError:
        raise R1LabError("logging.wandb=true needs wandb: pip install 'r1lab[wandb]'") from None
    return wandb.init(
        project=project,
        name=run_dir.name,
        dir=str(run_dir),
        config=config,
        id=run_id,
        resume="allow",
    )


class Tracker:
    """``metric(row)`` / ``samples(rows)`` per step; use as a context manager."""

    def __init__(
        self,
        run_dir: Path,
        cfg,  # LoggingConfig: tensorboard, wandb, wandb_project
        *,
        config: dict | None = None,
        resumed=None,  # the Checkpoint a resumed run continues from
    ) -> None:
        steps_done = resumed.steps_done if resumed is not None else 0
        wandb_id = resumed.state.get("wandb_id") if resumed is not None else None
        self.enabled = rdist.is_main()
        self.rows: list[dict[str, Any]] = []  # rows of the steps already done (resume)
        self._tb = self._wb = None
        self._metrics = self._samples = None
        if not self.enabled:
            return
        mode = "w"
        if steps_done > 0:
            self.rows = truncate_jsonl(run_dir / "metrics.jsonl", steps_done)
            truncate_jsonl(run_dir / "samples.jsonl", steps_done)
            mode = "a"
        self._metrics = JsonlWriter(run_dir / "metrics.jsonl", mode)
        self._samples = JsonlWriter(run_dir / "samples.jsonl", mode)
        if cfg.tensorboard:
            self._tb = _tensorboard(run_dir / "tensorboard", steps_done if steps_done else None)
        if cfg.wandb:
            self._wb = _wandb(run_dir, cfg.wandb_project, config or {}, wandb_id)

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps so a resumed run logs into the same W&B run."""
        return {"wandb_id": getattr(self._wb, "id", None)}

    def metric(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self._metrics.write(row)
        step = int(row["step"])
        numbers = {
            k: float(v)
            for k, v in row.items()
            if k != "step" and isinstance(v, int | float) and not isinstance(v, bool)
        }
        if self._tb is not None:
            for k, v in numbers.items():
                self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if self._wb is not None:
            self._wb.log(numbers, step=step)

    def samples(self, rows: Iterable[dict[str, Any]]) -> None:
        if self.enabled:
            for r in rows:
                self._samples.write(r)

    def close(self) -> None:
        for f in (self._metrics, self._samples, self._tb):
            if f is not None:
                f.close()
        if self._wb is not None:
            self._wb.finish()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
