"""One experiment over several seeds: ``seeds=[0,1,2]`` on ``compare``, ``distill-vs-rl``, ``r1``
and ``demo`` (docs/seeds.md).

Each seed is a full run of the pipeline into ``ROOT/seed<s>/`` with the config's ``seed`` set to
``s``; everything else (the pretraining seed, the data seed, the budget) stays as configured. A
seed is complete when ``ROOT/seed<s>/seed_done.json`` exists: it is written last, atomically, and
holds the seed's config (less `VOLATILE` keys) and the summary the report is built from. A rerun
reuses a complete seed with the same config, refuses one with a different config (unless the
pipeline resumes by itself, as ``r1`` and ``distill-vs-rl`` do stage by stage, whose own check
then decides), and reruns a half-finished seed: resumed by those pipelines, started afresh (its
directory cleared) by ``compare`` and ``demo``.

What this module does not do: statistics (`r1lab.eval.seeds_stats`) or the report
(`r1lab.eval.seeds_report`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from r1lab.config import to_dict
from r1lab.errors import ConfigError

DONE = "seed_done.json"
VOLATILE = ("progress", "threads")  # may change between reruns without changing the results


def take_seeds(overrides: Sequence[str]) -> tuple[tuple[int, ...] | None, list[str]]:
    """(seeds, the other overrides): ``seeds=[0,1,2]`` taken out of a command's overrides.

    None when no ``seeds=`` is given (one run with the config's ``seed``).
    """
    seeds, rest = None, []
    for item in overrides:
        key, _, raw = item.partition("=")
        if key.strip() != "seeds":
            rest.append(item)
            continue
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        seeds = check_seeds(value)
    if seeds is not None and any(i.partition("=")[0].strip() == "seed" for i in rest):
        raise ConfigError("give either seeds=[...] or seed=N, not both (seeds sets seed per run)")
    return seeds, rest


def check_seeds(value: Any) -> tuple[int, ...]:
    ok = (
        isinstance(value, list | tuple)
        and value
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)
    )
    if not ok:
        raise ConfigError(f"seeds: expected a list of integers >= 0 such as [0,1,2], got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"seeds: each seed once, got {list(value)}")
    return tuple(value)


def seed_dir(root: Path, seed: int) -> Path:
    return Path(root) / f"seed{seed}"


def fingerprint(cfg: Any) -> Any:
    """The YAML-normalized config of a seed (a config dataclass or a dict of them), less the
    `VOLATILE` keys (at any depth)."""

    def strip(d: Any) -> Any:
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if k not in VOLATILE}
        return d

    return strip(yaml.safe_load(yaml.safe_dump(to_dict(cfg), sort_keys=True)))


def completed(root: Path, seed: int) -> dict | None:
    """The ``seed_done.json`` of a complete seed, else None (a torn file counts as not done)."""
    marker = seed_dir(root, seed) / DONE
    try:
        return json.loads(marker.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@dataclass
class SeedRun:
    seed: int
    run_dir: Path
    summary: dict[str, Any]  # JSON: what the pipeline's seed report is built from
    reused: bool


def run_seeds(
    root: Path,
    seeds: Sequence[int],
    config_of: Callable[[int], Any],
    run_one: Callable[[int, Path], dict[str, Any]],
    *,
    resumable: bool,
    log=print,
) -> list[SeedRun]:
    """``run_one(seed, seed_dir) -> summary`` for each seed, unless that seed is complete with
    the same config (`fingerprint` of ``config_of(seed)``); the marker is written after it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i, seed in enumerate(seeds):
        sdir, fp = seed_dir(root, seed), fingerprint(config_of(seed))
        done = completed(root, seed)
        if done is not None and done.get("config") == fp:
            log(f"[seeds] seed {seed} ({i + 1}/{len(seeds)}) already complete; reusing {sdir}")
            out.append(SeedRun(seed, sdir, done["summary"], True))
            continue
        if done is not None and not resumable:
            raise ConfigError(
                f"{sdir} holds a complete run with a different config; use another output "
                "directory (run_name / --out) or the same recipe and overrides"
            )
        # resumable with another config: the pipeline's own resume check compares the configs
        # (the old marker stays until the new run replaces it)
        if done is None and sdir.exists() and not resumable:
            log(f"[seeds] seed {seed} did not finish earlier; starting it afresh in {sdir}")
            shutil.rmtree(sdir)
        log(f"[seeds] seed {seed} ({i + 1}/{len(seeds)}) in {sdir}")
        summary = run_one(seed, sdir)
        tmp = sdir / f".{DONE}.tmp"
        tmp.write_text(json.dumps({"seed": seed, "config": fp, "summary": summary}, default=str))
        tmp.replace(sdir / DONE)
        out.append(SeedRun(seed, sdir, json.loads(json.dumps(summary, default=str)), False))
    return out
