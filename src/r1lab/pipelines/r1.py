"""The four-stage DeepSeek-R1 pipeline from one recipe into one run directory (R1 §2.3; §10.3).

0. evaluate the base model (held-out pass@1 / cons@k with the chat template)
1. cold start: readable long-CoT rows from a seed file (or synthetic seed rows) and from filtered,
   reformatted R1-Zero-format outputs -> SFT of the base
2. reasoning RL (GRPO) from the stage-1 model: accuracy + language consistency (or + readable
   format when no ``language`` reward is registered)
3. rejection sampling of the stage-2 model (correct, filtered, deduplicated, capped) + general
   chat rows at ``general.ratio`` -> SFT of the BASE model (not of the stage-2 model, as in R1)
4. RL for all scenarios from the stage-3 model: rule-based rewards on reasoning prompts, a
   preference RM on general prompts (helpfulness on the summary, harmlessness on the whole
   response; ``reward_model.path`` or a tiny RM trained here; `r1_all_rl`)

Every stage writes ``<run_dir>/<i>_<stage>/`` and ends with ``done.json``; a rerun skips finished
stages (and the rejection sampling and evaluations resume inside a stage). ``report.md/json``
compares every stage's evaluation in one table.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from r1lab.config import save_config
from r1lab.data.general_chat import general_examples, general_sft_rows, mix_rows
from r1lab.data.loaders import read_rows
from r1lab.data.readable import cold_start_from_r1_zero, cold_start_from_seed, write_synthetic_seed
from r1lab.errors import R1LabError
from r1lab.pipelines import grpo, rejection_sampling, sft
from r1lab.pipelines import r1_all_rl as stage4
from r1lab.pipelines.common import task_examples
from r1lab.pipelines.r1_common import (
    PipelineResult,
    evaluate_checkpoint,
    finish,
    open_run_dir,
    run_stage,
    stage_config,
    with_eval,
    write_jsonl,
)
from r1lab.pipelines.r1_config import R1Config
from r1lab.rewards import REWARDS
from r1lab.rewards.combine import RewardComponent, check_spec
from r1lab.utils.jsonl import read_jsonl


def stage_rewards(cfg: R1Config, stage: str, rm_dir: str | None = None):
    """The stage's reward spec: the recipe's, else R1's (stage 2: accuracy + language
    consistency; stage 4: `r1_all_rl.all_rl_rewards`, the RM on general prompts)."""
    if stage == "all_rl":
        return stage4.all_rl_rewards(cfg, rm_dir)
    if cfg.reasoning_rl.rewards:
        return cfg.reasoning_rl.rewards
    acc = RewardComponent("accuracy", 1.0)
    if "language" in REWARDS:
        return (acc, RewardComponent("language", 1.0, stage4.tags(cfg)))
    return (acc, RewardComponent("format_r1", 0.5, stage4.tags(cfg)))


def _sft(cfg: R1Config, model_path: str, data: Path, section, run_dir: Path, log):
    """SFT of ``model_path`` on ``data``: ``section`` (an `SFTConfig`) with what R1 sets."""
    scfg = stage_config(section, cfg, model_path, data=replace(section.data, train_file=str(data)))
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(scfg, run_dir / "config.yaml")
    return sft.run(scfg, run_dir=run_dir, log=log)


def _rl(cfg: R1Config, stage: str, model_path: str, run_dir: Path, data=None, log=print, rm=None):
    rewards = stage_rewards(cfg, stage, rm)
    rcfg = stage_config(
        getattr(cfg, stage), cfg, model_path, data=data or cfg.data, rewards=rewards, eval=cfg.eval
    )
    save_config(rcfg, run_dir / "config.yaml")
    log(f"[{stage}] rewards: {[(c.name, c.weight) for c in rcfg.rewards]}")
    res = grpo.run(rcfg, run_dir=run_dir, log=log)
    last = res.metrics[-1] if res.metrics else {}
    return {
        "checkpoint": str(res.checkpoint),
        "rewards": [c.name for c in rcfg.rewards],
        "steps": len(res.metrics),
        "last_reward": last.get("reward"),
        "seconds": round(res.wall_seconds, 1),
        **({"rm": stage4.rm_summary(res.metrics)} if rm else {}),
    }


def cold_start(cfg: R1Config, base: str, sdir: Path, log=print) -> dict:
    cs = cfg.cold_start
    seed_path = cs.seed_file or write_synthetic_seed(
        task_examples(replace(cfg.data, n_train=cs.n_seed, train_file=None), "train"),
        sdir / "seed.jsonl",
        cfg.seed,
    )
    rows = cold_start_from_seed(seed_path, cfg.readable)
    info: dict = {"seed_rows": len(rows)}
    if cs.r1_zero_model:
        source = base if cs.r1_zero_model == "base" else cs.r1_zero_model
        zcfg = stage_config(cs.r1_zero, cfg, source, data=replace(cfg.data, template="r1_zero"))
        rs = rejection_sampling.run(zcfg, run_dir=sdir / "r1_zero_samples", log=log)
        zero_rows, dropped = cold_start_from_r1_zero(
            read_jsonl(rs.dataset), cs.filters, cfg.readable
        )
        rows += zero_rows
        info |= {
            "r1_zero_correct": rs.rows,
            "r1_zero_rows": len(zero_rows),
            "r1_zero_dropped": dropped,
        }
    data = write_jsonl(rows, sdir / "cold_start.jsonl")
    res = _sft(cfg, base, data, cs.sft, sdir / "sft", log)
    log(f"[cold_start] {len(rows)} readable rows ({info})")
    return {
        **info,
        "checkpoint": str(res.checkpoint),
        "eval_loss": res.eval_loss,
        "sft_steps": res.steps,
    }


def rejection_sft(cfg: R1Config, base: str, stage2: str, sdir: Path, log=print) -> dict:
    rj = cfg.rejection
    tags = stage4.tags(cfg)
    filters = tuple(
        replace(f, params={**tags, **f.params}) if f.name == "readable" else f for f in rj.filters
    )
    reasoning = replace(rj.reasoning, **tags)
    rcfg = stage_config(rj, cfg, stage2, data=cfg.data, filters=filters, reasoning=reasoning)
    rs = rejection_sampling.run(rcfg, run_dir=sdir / "rejection", log=log)
    reasoning = read_jsonl(rs.dataset)
    if not reasoning:
        raise R1LabError(
            f"stage 3: rejection sampling kept no sample of {rs.stats['samples']} ({rs.stats}); "
            "the stage-2 model solves none of the prompts in the readable format - train stage 2 "
            "longer or sample more (rejection.k, rejection.n_prompts)"
        )
    general = (
        [row for _, row in read_rows(cfg.general.file)]
        if cfg.general.file
        else general_sft_rows(cfg.general.n, cfg.seed)
    )
    rows, mix = mix_rows(reasoning, general, cfg.general.ratio, cfg.seed)
    data = write_jsonl(rows, sdir / "sft_data.jsonl")
    log(f"[rejection_sft] {mix}; SFT of the base model")
    res = _sft(cfg, base, data, cfg.sft, sdir / "sft", log)
    return {
        "checkpoint": str(res.checkpoint),
        "rejection": rs.stats,
        "mix": mix,
        "eval_loss": res.eval_loss,
        "sft_steps": res.steps,
    }


def all_rl(cfg: R1Config, stage3: str, sdir: Path, rm: str | None, log=print) -> dict:
    path, n_general = stage4.all_rl_prompts(cfg, sdir)
    data = replace(cfg.data, train_file=str(path))
    return {**_rl(cfg, "all_rl", stage3, sdir, data, log, rm), "general_prompts": n_general}


def evaluate_stage(cfg: R1Config, ckpt: str, sdir: Path, test, general, rm=None) -> dict:
    rollouts = cfg.reasoning_rl.sampling  # the chat template's stop; generation batch size
    kw = {
        "template": cfg.data.template,
        "stop": rollouts.stop,
        "seed": cfg.seed,
        "batch_size": rollouts.batch_size,
        "progress": cfg.progress,
        "device": cfg.model.device,
        "dtype": cfg.model.dtype,
    }
    metrics = evaluate_checkpoint(ckpt, test, ecfg=cfg.eval, out_path=sdir / "eval.jsonl", **kw)
    if general:  # rule-graded general chat: the share of responses matching the reference
        g = evaluate_checkpoint(
            ckpt, general, ecfg=cfg.eval, out_path=sdir / "eval_general.jsonl", **kw
        )
        metrics["general_accuracy"] = g["pass@1"]
        if rm:  # RM helpfulness / harmlessness of the general answers, stage by stage
            metrics |= stage4.score_general_eval(cfg, rm, sdir / "eval_general.jsonl", general)
    return metrics


def run(cfg: R1Config, log=print) -> PipelineResult:
    t0 = time.time()
    for spec in [stage_rewards(cfg, s, "RM") for s in ("reasoning_rl", "all_rl")]:
        check_spec(spec)  # order and duplicates, before any model (names: at load)
    run_dir = open_run_dir(cfg.output_dir, cfg.run_name, "r1", cfg)
    log(f"[r1] run directory: {run_dir}")
    base = cfg.model.path
    if base == "tiny":
        from r1lab.pipelines.pretrain import ensure_base

        base = str(ensure_base(cfg.pretrain, progress=cfg.progress, log=log))
    test = task_examples(cfg.data, "test")
    general = general_examples(cfg.general.eval_n, cfg.seed + 7) if cfg.general.eval_n else []
    rm = stage4.resolve_reward_model(cfg, base, log) if stage4.uses_rm(cfg) else None

    def evaluated(body):
        return with_eval(
            body, lambda ckpt, sdir: evaluate_stage(cfg, ckpt, sdir, test, general, rm)
        )

    done: dict[str, dict] = {}
    done["base"] = run_stage(
        run_dir / "0_base", "base", evaluated(lambda s: {"checkpoint": base}), log
    )
    bodies = {
        "cold_start": lambda s: cold_start(cfg, base, s, log),
        "reasoning_rl": lambda s: _rl(
            cfg, "reasoning_rl", done["cold_start"]["checkpoint"], s, log=log
        ),
        "rejection_sft": lambda s: rejection_sft(
            cfg, base, done["reasoning_rl"]["checkpoint"], s, log
        ),
        "all_rl": lambda s: all_rl(cfg, done["rejection_sft"]["checkpoint"], s, rm, log),
    }
    for i, name in enumerate(cfg.stages, 1):
        done[name] = run_stage(run_dir / f"{i}_{name}", name, evaluated(bodies[name]), log)
    return _report(cfg, run_dir, done, time.time() - t0, rm)


def _report(cfg: R1Config, run_dir: Path, done: dict[str, dict], wall: float, rm):
    extra = {
        "stage-2 rewards": done.get("reasoning_rl", {}).get("rewards"),
        "stage-4 rewards": done.get("all_rl", {}).get("rewards"),
        "stage-3 mix": done.get("rejection_sft", {}).get("mix"),
        "general_accuracy": "in-distribution synthetic general-chat prompts (rule-graded)",
    }
    if rm:
        from r1lab.pipelines.reward_model import reward_model_info

        extra["reward model"] = {"path": rm, **reward_model_info(Path(rm))}
        extra["stage-4 RM components"] = done.get("all_rl", {}).get("rm")
        extra["general_rm_*"] = "mean RM score of the general answers (helpful: summary only)"
    title = ("r1lab R1 pipeline: held-out results per stage", "R1 pipeline")
    return finish(cfg, run_dir, done, extra, title, wall)
