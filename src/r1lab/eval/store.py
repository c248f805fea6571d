"""The per-sample JSONL of an evaluation and its resume logic.

Rows are appended (and flushed) one chunk of problems at a time, so an interrupted evaluation
leaves every finished chunk on disk. A sidecar ``<file>.meta.json`` records what produced the rows
(k, sampling, grading); resuming with different settings is refused rather than mixing results.
On resume, a problem counts as finished when all k of its samples are on disk with the same
problem id and prompt; rows of unfinished problems (and a torn last line) are dropped.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from r1lab.errors import ConfigError
from r1lab.types import SamplingParams
from r1lab.utils.jsonl import JsonlWriter, read_jsonl


def meta_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".meta.json")


def eval_meta(
    k: int,
    sampling: SamplingParams,
    extractor: str | None,
    format_reward: str | None,
    reward_names: list[str],
) -> dict[str, Any]:
    """What must match for rows of an earlier run to be reused (JSON-normalized)."""
    meta = {
        "k": k,
        "sampling": asdict(sampling),
        "extractor": extractor,
        "format_reward": format_reward,
        "reward_spec": reward_names,
    }
    return json.loads(json.dumps(meta))


def open_store(
    out_path: Path, meta: dict[str, Any], *, resume: bool, prompts: list[str], ids: list[str]
) -> tuple[JsonlWriter, dict[int, list[dict[str, Any]]]]:
    """(appending writer, finished problem_index -> its k rows) for `out_path`.

    With ``resume=False`` (or no file yet) the file is started afresh.
    """
    out_path.parent.mkdir(parents=True, exist_ok=True)
    mpath = meta_path(out_path)
    finished: dict[int, list[dict[str, Any]]] = {}
    if resume and out_path.exists():
        old = json.loads(mpath.read_text()) if mpath.exists() else None
        if old is None and out_path.stat().st_size > 0:
            raise ConfigError(
                f"{out_path} has no {mpath.name}, so its settings are unknown; use another "
                "output path or resume=False to start over"
            )
        if old is not None and old != meta:
            diff = sorted(key for key in meta if old.get(key) != meta[key])
            raise ConfigError(
                f"{out_path} holds results of a different evaluation (differs in: "
                f"{', '.join(diff)}); use another output path or resume=False to start over"
            )
        finished = finished_problems(read_jsonl(out_path), meta["k"], prompts, ids)
        kept = [row for pi in sorted(finished) for row in finished[pi]]
        tmp = out_path.with_name(out_path.name + ".tmp")
        with JsonlWriter(tmp, "w") as w:
            for row in kept:
                w.write(row)
        os.replace(tmp, out_path)
    else:
        out_path.write_text("")
    mpath.write_text(json.dumps(meta, indent=1))
    return JsonlWriter(out_path, "a"), finished


def finished_problems(
    rows: list[dict[str, Any]], k: int, prompts: list[str], ids: list[str]
) -> dict[int, list[dict[str, Any]]]:
    by_problem: dict[int, dict[int, dict[str, Any]]] = {}
    for row in rows:
        try:
            pi, si = int(row["problem_index"]), int(row["sample_index"])
        except (KeyError, TypeError, ValueError):
            continue
        if not (0 <= pi < len(prompts) and 0 <= si < k):
            continue
        if row.get("problem_id") != ids[pi] or row.get("prompt") != prompts[pi]:
            continue
        by_problem.setdefault(pi, {})[si] = row
    return {
        pi: [samples[si] for si in range(k)]
        for pi, samples in by_problem.items()
        if len(samples) == k
    }
