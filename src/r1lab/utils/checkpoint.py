"""Atomic, resumable training checkpoints of every stage (RL, SFT): ``RUN/checkpoints/step-NNNNNN/``
plus a ``latest`` pointer; and `atomic_dir`, how every stage writes its final plain HF directory.

A checkpoint holds the full model state (``model.safetensors``: every tensor of the trained module,
LoRA adapters included), the optimizer state, the scheduler state, every rank's RNG states, the
data cursor and permutation, and the number of completed steps. It is written into a hidden
temporary directory, each file fsynced, then renamed into place with `os.replace` (atomic on
POSIX) and only then named by ``latest``: a process killed at any moment leaves either the
previous complete checkpoint or the new one, never a torn one. Stale temporary directories from a
killed writer are removed by the next save. What it does not do: sharded (per-rank) files; FSDP2
state is gathered to full tensors on rank 0 first (engines/fsdp.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from r1lab.errors import ConfigError, R1LabError
from r1lab.utils import dist as rdist

STEP_DIR = re.compile(r"^step-(\d{6,})$")
LATEST = "latest"


class NoCheckpoint(R1LabError):
    """--resume found no complete checkpoint."""


@dataclass
class Checkpoint:
    path: Path
    steps_done: int
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict
    state: dict[str, Any]  # scheduler, rng (one entry per rank), data cursor, ... (caller's)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    root: Path,
    steps_done: int,
    *,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict,
    state: dict[str, Any],
    keep_last: int = 2,
) -> Path:
    """Write ``root/step-<steps_done>`` atomically, point ``latest`` at it, prune old ones."""
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    name = f"step-{steps_done:06d}"
    final = root / name
    with atomic_dir(final) as tmp:  # the same step saved twice (periodic and final): replaced
        # clone: tied weights share storage, which safetensors refuses to serialize twice
        tensors = {k: v.detach().cpu().clone().contiguous() for k, v in model_state.items()}
        save_file(tensors, str(tmp / "model.safetensors"))
        torch.save(optimizer_state, tmp / "optimizer.pt")
        torch.save(state, tmp / "state.pt")
        (tmp / "meta.json").write_text(json.dumps({"steps_done": steps_done}))
        for f in [*tmp.iterdir(), tmp]:
            _fsync(f)
    _fsync(root)
    pointer = root / f".tmp-{LATEST}-{os.getpid()}"
    pointer.write_text(name + "\n")
    _fsync(pointer)
    os.replace(pointer, root / LATEST)
    _fsync(root)
    for old in complete_checkpoints(root)[:-keep_last] if keep_last > 0 else []:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """A temporary sibling directory to write into; it replaces ``path`` (rename, atomic) when
    the block ends without an error, so a killed writer never leaves a half-written ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".tmp-{path.name}-"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def complete_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoint directories, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if STEP_DIR.match(p.name) and (p / "meta.json").exists()]
    return sorted(found, key=lambda p: int(STEP_DIR.match(p.name).group(1)))


def latest_checkpoint(root: Path) -> Path | None:
    """The checkpoint ``latest`` names, else the newest complete one, else None."""
    pointer = root / LATEST
    if pointer.exists():
        named = root / pointer.read_text().strip()
        if STEP_DIR.match(named.name) and (named / "meta.json").exists():
            return named
    done = complete_checkpoints(root)
    return done[-1] if done else None


def load_checkpoint(path: Path) -> Checkpoint:
    meta = json.loads((path / "meta.json").read_text())
    return Checkpoint(
        path=path,
        steps_done=int(meta["steps_done"]),
        model_state=load_file(str(path / "model.safetensors")),
        optimizer_state=torch.load(path / "optimizer.pt", weights_only=False),
        state=torch.load(path / "state.pt", weights_only=False),
    )


def rng_state() -> dict[str, Any]:
    """This process's RNG states (python, torch CPU, torch accelerators)."""
    out: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["accelerator"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "accelerator" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["accelerator"])


def config_differences(saved: Any, new: Any, may_differ: tuple[str, ...], path: str = "") -> list:
    """Dotted keys whose values differ between two config dicts, except `may_differ` prefixes."""
    if path and path.startswith(may_differ):
        return []
    if isinstance(saved, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(saved) | set(new)):
            sub = f"{path}.{key}" if path else key
            out += config_differences(saved.get(key), new.get(key), may_differ, sub)
        return out
    return [] if saved == new else [f"{path}: {saved!r} -> {new!r}"]


class RunCheckpoints:
    """The checkpoints of one training run; `save`/`restore` are called on every rank."""

    def __init__(self, run_dir: Path, every_steps: int, keep_last: int, *, fresh: bool) -> None:
        """`fresh`: a new (not resumed) run in this directory drops its old checkpoints."""
        if every_steps < 0 or keep_last < 1:
            raise ConfigError("checkpoint.every_steps must be >= 0 and checkpoint.keep_last >= 1")
        self.root = run_dir / "checkpoints"
        if fresh and rdist.is_main():
            shutil.rmtree(self.root, ignore_errors=True)
        self.every_steps = every_steps
        self.keep_last = keep_last

    def due(self, steps_done: int, total_steps: int) -> bool:
        periodic = self.every_steps > 0 and steps_done % self.every_steps == 0
        return periodic or steps_done == total_steps

    def save(self, steps_done: int, learner, scheduler, state: dict[str, Any]) -> None:
        """Gather the learner's full state (collective) and write it from rank 0. `state` holds
        the caller's data position: ``cursor`` and ``order`` (checked on restore)."""
        learned = learner.state()  # model, optimizer, skipped_steps
        state = {
            **state,
            "scheduler": scheduler.state_dict(),
            "rng": rdist.gather_objects(rng_state()),
        }
        if rdist.is_main():
            save_checkpoint(
                self.root,
                steps_done,
                model_state=learned.pop("model"),
                optimizer_state=learned.pop("optimizer"),
                state=state | learned,
                keep_last=self.keep_last,
            )
        rdist.gather_objects(None)  # no rank runs ahead while rank 0 writes

    def restore(
        self, learner, scheduler, *, order: list, total_steps: int, what: str = "grpo.steps"
    ) -> Checkpoint:
        """Load the latest complete checkpoint into learner/scheduler. Refuses a checkpoint that
        already reached `total_steps` (no silent zero-step run) or whose data order differs
        (it would replay or skip data). RNG is the caller's: set it right before the first
        resumed step with ``set_rng_state(ck.state["rng"][rank])``."""
        path = latest_checkpoint(self.root)
        if path is None:
            raise NoCheckpoint(
                f"--resume: no complete checkpoint in {self.root}; start the run without --resume"
            )
        ck = load_checkpoint(path)
        if ck.steps_done >= total_steps:
            raise ConfigError(
                f"--resume: {path} has already trained {ck.steps_done} of {what}="
                f"{total_steps} steps; nothing to do (raise {what} to train further)"
            )
        if ck.state["order"] != order:
            raise ConfigError(
                f"--resume: the training data order differs from {path}'s (data or seed changed)"
            )
        if len(ck.state["rng"]) != rdist.world_size():
            raise ConfigError(
                f"--resume: {path} was written by {len(ck.state['rng'])} processes, this run has "
                f"{rdist.world_size()}; resume with the same number of processes"
            )
        learner.load_state({**ck.state, "model": ck.model_state, "optimizer": ck.optimizer_state})
        scheduler.load_state_dict(ck.state["scheduler"])
        return ck


# keys a resumed run may change: presentation, budget, where logs go
RESUME_MAY_DIFFER = (
    "progress",
    "threads",
    "grpo.steps",
    "checkpoint",
    "logging",
    "output_dir",
    "run_name",
    "dist.timeout_s",
)


def resumable_run_dir(cfg, resume: bool | str | Path) -> Path:
    """The run directory `--resume` continues, after checking its config matches `cfg` in
    everything that changes training (one clear error listing the differences)."""
    from r1lab.config import save_config, to_dict

    if resume is True:
        if not cfg.run_name:
            raise ConfigError(
                "--resume needs the run to continue: run_name=NAME (under output_dir) "
                "or --resume RUN_DIR"
            )
        run_dir = Path(cfg.output_dir) / cfg.run_name
    else:
        run_dir = Path(resume)
    saved_path = run_dir / "config.yaml"
    if not saved_path.exists():
        raise NoCheckpoint(f"--resume: {run_dir} is not a run directory (no config.yaml)")
    saved = yaml.safe_load(saved_path.read_text())
    diff = config_differences(saved, to_dict(cfg), RESUME_MAY_DIFFER)
    if diff:
        raise ConfigError(
            f"--resume: the config differs from {saved_path} in what training depends on: "
            + "; ".join(diff)
        )
    if rdist.is_main():
        save_config(cfg, saved_path)
    return run_dir
