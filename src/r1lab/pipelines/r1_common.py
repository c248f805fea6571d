"""Wiring shared by the multi-stage pipelines (`r1`, `distill`): stage sections, stage markers,
config checks, held-out evaluation of a checkpoint, dataset files and the final comparison table.

A stage section is the stage's whole config overlaying its defaults; the pipeline sets the keys
`OWNED` lists (`stage_config`), and a recipe that sets one of them in a section is refused at
load (`owned_by_pipeline`), never silently overridden (docs/pipelines.md).

A stage directory is finished when it holds ``done.json`` (written last, atomically), so a rerun
of the same run directory skips it and reuses its checkpoint and evaluation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import reduce
from pathlib import Path
from typing import Any

import yaml

from r1lab.config import save_config, to_dict
from r1lab.errors import ConfigError
from r1lab.pipelines.rl_config import EvalConfig
from r1lab.rewards.combine import RewardComponent
from r1lab.types import Example, SamplingParams

_RUN = dict.fromkeys(("seed", "output_dir", "run_name", "threads", "progress"), "top level")
_MODEL = "the previous stage's checkpoint (or the base) in the top-level model's dtype and device"
_RUN |= {"model": _MODEL, "pretrain": "top level"}
OWNED = {  # what a pipeline sets in a stage section of each kind: key -> what sets it
    "rl": {**_RUN, "data": "top level", "eval": "top level: every stage is evaluated alike"},
    "sft": {
        **_RUN,
        "data.train_file": "the stage's rows",
        "data.prompt_format": "the rows' format",
    },
    "rs": {**_RUN, "data": "top level"},
}


def _first_difference(got: Any, default: Any, key: str) -> str | None:
    a, b = to_dict(got), to_dict(default)
    if isinstance(a, dict) and a != b:
        return next(f"{key}.{k}" for k in a if a[k] != b[k])
    return None if a == b else key


def owned_by_pipeline(sections: Mapping[str, Mapping[str, str]]):
    """A `constrained` rule: each stage section (dotted name -> {key: what the pipeline sets})
    leaves the keys its pipeline sets at the section's defaults."""

    def rule(cfg) -> tuple[str, str] | None:
        get = lambda c, dotted: reduce(getattr, dotted.split("."), c)  # noqa: E731
        for name, owned in sections.items():
            section = get(cfg, name)
            default = type(section)()
            for key, what in owned.items():
                diff = _first_difference(get(section, key), get(default, key), key)
                if diff is not None:
                    return f"{name}.{diff}", f"no value here (the pipeline sets it: {what})"
        return None

    return rule


def stage_config(section, cfg, model, **owned):
    """The stage's config: its recipe section with the keys the pipeline owns (`OWNED`) set, the
    run's ``pretrain`` where it has one. ``model``: a `ModelConfig`, or a path for ``cfg.model``."""
    model = replace(cfg.model, path=model) if isinstance(model, str) else model
    run = {"seed": cfg.seed, "threads": cfg.threads, "progress": cfg.progress}
    pretrain = getattr(cfg, "pretrain", section.pretrain)
    return replace(section, **run, model=model, pretrain=pretrain, **owned)


VOLATILE = ("progress", "threads", "stages")  # keys that may change between reruns


@dataclass
class PipelineResult:
    run_dir: Path
    stages: dict[str, dict]  # stage name -> its done.json (checkpoint, eval, seconds ...)
    report: dict[str, str]
    wall_seconds: float


def open_run_dir(output_dir: str, run_name: str, kind: str, cfg) -> Path:
    """The run directory; a rerun must carry the same config (except `VOLATILE` keys). Sets the
    run's torch threads."""
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    run_dir = Path(output_dir) / (run_name or f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}")
    saved = run_dir / "config.yaml"
    if saved.exists():
        old, new = (
            {k: v for k, v in (d or {}).items() if k not in VOLATILE}
            for d in map(yaml.safe_load, (saved.read_text(), yaml.safe_dump(to_dict(cfg))))
        )
        if old != new:
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ConfigError(
                f"{run_dir} was started with a different config (sections {diff}); resume it "
                "with the same recipe and overrides, or choose another run_name"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, saved)
    return run_dir


def stage_done(stage_dir: Path) -> dict | None:
    marker = stage_dir / "done.json"
    return json.loads(marker.read_text()) if marker.exists() else None


def mark_done(stage_dir: Path, info: Mapping[str, Any]) -> dict:
    tmp = stage_dir / ".done.json.tmp"
    tmp.write_text(json.dumps(dict(info), indent=1, default=str))
    tmp.replace(stage_dir / "done.json")
    return dict(info)


def run_stage(stage_dir: Path, name: str, body: Callable[[Path], dict], log=print) -> dict:
    """``body(stage_dir) -> info`` unless the stage already finished; returns its info."""
    done = stage_done(stage_dir)
    if done is not None:
        log(f"[{name}] already finished; reusing {done.get('checkpoint', stage_dir)}")
        return done
    stage_dir.mkdir(parents=True, exist_ok=True)
    log(f"[{name}] starting in {stage_dir}")
    return mark_done(stage_dir, body(stage_dir))


def with_eval(body: Callable[[Path], dict], evaluate: Callable[[str, Path], dict]):
    """A stage body whose result also gets ``eval`` = ``evaluate(checkpoint, stage_dir)`` and the
    stage's ``seconds`` (the body returns at least ``{"checkpoint": DIR}``)."""

    def stage(sdir: Path) -> dict:
        t = time.time()
        info = body(sdir)
        info["eval"] = evaluate(info["checkpoint"], sdir)
        return {**info, "seconds": round(time.time() - t, 1)}

    return stage


def evaluated_stages(examples: Sequence[Example], **eval_kwargs):
    """A `with_eval` wrapper whose evaluation is `evaluate_checkpoint` of the stage's checkpoint
    on ``examples`` into ``stage_dir / "eval.jsonl"`` (``eval_kwargs``: its keyword arguments)."""

    def evaluate(ckpt: str, sdir: Path) -> dict:
        return evaluate_checkpoint(ckpt, examples, out_path=sdir / "eval.jsonl", **eval_kwargs)

    return lambda body: with_eval(body, evaluate)


def write_jsonl(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(dict(r), default=str) + "\n" for r in rows))
    tmp.replace(path)
    return path


def examples_file(examples: Sequence[Example], path: Path) -> Path:
    """Task rows (question, answer, verifier and the task fields) an RL stage can read."""
    return write_jsonl([ex.as_row() for ex in examples], path)


def eval_spec(format_reward: str) -> tuple[RewardComponent, ...]:
    """accuracy (the row's verifier) and the format reward, logged at weight 0."""
    return (RewardComponent("accuracy", 1.0), RewardComponent(format_reward, 0.0))


def evaluate_checkpoint(
    path: str | Path,
    examples: Sequence[Example],
    *,
    template: str,
    ecfg: EvalConfig,
    stop: tuple[str, ...],
    out_path: Path,
    batch_size: int = 128,
    seed: int = 0,
    progress: bool = True,
    device: str = "cpu",
    dtype: str = "float32",
) -> dict[str, Any]:
    """Held-out pass@1 / cons@k (R1 protocol, `r1lab.eval`) of a checkpoint, loaded on
    ``device`` (``auto``: the GPU when one is visible) in ``dtype``; resumable."""
    from r1lab.engines.device import resolve_device
    from r1lab.engines.generators import build_generator
    from r1lab.eval.runner import evaluate
    from r1lab.models.hf_load import load_causal_lm
    from r1lab.pipelines.common import prompts_for

    model, tokenizer = load_causal_lm(str(path), dtype=dtype, device=resolve_device(device))
    sampling = SamplingParams(
        temperature=ecfg.temperature,
        top_p=ecfg.top_p,
        max_new_tokens=ecfg.max_new_tokens,
        stop=stop,
        seed=seed,
    )
    result = evaluate(
        build_generator(model=model, tokenizer=tokenizer, batch_size=batch_size),
        list(examples),
        prompts=prompts_for(list(examples), template, tokenizer),
        k=ecfg.k,
        sampling=sampling,
        reward_spec=eval_spec(ecfg.format_reward),
        format_reward=ecfg.format_reward,
        out_path=out_path,
        resume=True,
        progress=progress,
    )
    return result.metrics


REPORT_KEYS = ("pass@1", "cons@{k}", "format_rate", "mean_response_tokens", "general_accuracy")


def finish(cfg, run_dir: Path, done: dict, extra: dict, title: tuple[str, str], wall: float):
    """Write ``report.md/json`` (every stage's evaluation side by side, ``extra`` facts, each
    stage's seconds) and print the table; ``title``: (the report's, the table's)."""
    from r1lab.eval.report import write_report

    sections = {name: info["eval"] for name, info in done.items() if "eval" in info}
    extra = {**extra, "wall seconds (this invocation)": round(wall, 1)}
    extra |= {f"{n} seconds": i.get("seconds") for n, i in done.items()}
    paths = write_report(run_dir, sections, extra, title=title[0])
    print_table(f"{title[1]} ({wall / 60:.1f} min)", sections, cfg.eval.k)
    print(f"report: {paths['report_md']}")
    return PipelineResult(run_dir, done, paths, wall)


def print_table(title: str, sections: Mapping[str, Mapping[str, Any]], k: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    for name in sections:
        table.add_column(name, justify="right")
    for key in (key.format(k=k) for key in REPORT_KEYS):
        if any(key in m for m in sections.values()):
            cells = [f"{m[key]:.3f}" if key in m else "-" for m in sections.values()]
            table.add_row(key, *cells)
    Console().print(table)
