"""Stage 4 of the R1 pipeline: RL for all scenarios (R1 §2.3.4; algorithms.md §10.3).

Reasoning prompts keep their rule-based rewards; general prompts (``verifier: general``) are
scored by a preference reward model: helpfulness on the summary only, harmlessness on the whole
response (`rewards.preference`). The RM is ``reward_model.path`` (any HF sequence-classification
directory, num_labels 1) or, when that is empty, the tiny RM trained here on synthetic preferences
from the base's weights (`pipelines.reward_model`, cached by config hash).

The automatic stage-4 spec (when ``all_rl.rewards`` is empty):

| component          | weight                        | rows                                  |
|--------------------|-------------------------------|---------------------------------------|
| accuracy           | 0 (logged: the rule on every row, incl. the ``general`` rule)     | all |
| reasoning_accuracy | 1                             | reasoning rows (0 on general rows)    |
| language           | 1 (when registered)           | all                                   |
| rm_helpful         | ``reward_model.helpful_weight``  | general rows (0 on reasoning rows) |
| rm_harmless        | ``reward_model.harmless_weight`` | general rows                       |

An explicit spec that lists ``rm_helpful`` / ``rm_harmless`` without ``params.model`` gets the
resolved RM directory and the reasoning tags filled in.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from r1lab.data.general_chat import general_examples
from r1lab.errors import ConfigError, R1LabError
from r1lab.pipelines.common import task_examples
from r1lab.pipelines.r1_common import examples_file
from r1lab.rewards import REWARDS
from r1lab.rewards.combine import RewardComponent
from r1lab.utils.jsonl import read_jsonl

RM_COMPONENTS = ("rm_helpful", "rm_harmless")


def tags(cfg) -> dict:
    return {"open_tag": cfg.readable.open_tag, "close_tag": cfg.readable.close_tag}


def uses_rm(cfg) -> bool:
    """Whether stage 4 grades with a reward model (the automatic spec always does)."""
    return "all_rl" in cfg.stages and (
        not cfg.all_rl.rewards or any(c.name in RM_COMPONENTS for c in cfg.all_rl.rewards)
    )


def resolve_reward_model(cfg, base: str, log=print) -> str:
    """The RM directory: ``reward_model.path``, else the tiny RM trained on ``base`` (cached)."""
    rm = cfg.reward_model
    if rm.path:
        if not (Path(rm.path) / "config.json").exists():
            raise ConfigError(
                f"reward_model.path {rm.path!r} is not a Hugging Face model directory; give a "
                "sequence-classification checkpoint or leave it empty to train the tiny RM"
            )
        return rm.path
    from r1lab.pipelines.reward_model import ensure_reward_model

    train = rm.train if rm.train.threads else replace(rm.train, threads=cfg.threads)
    return str(ensure_reward_model(train, Path(base), progress=cfg.progress, log=log))


def rm_params(cfg, rm_dir: str) -> dict:
    rm = cfg.reward_model
    return {"model": rm_dir, "max_len": rm.max_len, "batch_size": rm.batch_size, **tags(cfg)}


def all_rl_rewards(cfg, rm_dir: str | None) -> tuple[RewardComponent, ...]:
    """The stage-4 reward spec (see the module docstring)."""
    if cfg.all_rl.rewards:
        return tuple(
            replace(c, params={**rm_params(cfg, rm_dir or ""), **c.params})
            if c.name in RM_COMPONENTS
            else c
            for c in cfg.all_rl.rewards
        )
    spec = [RewardComponent("accuracy", 0.0), RewardComponent("reasoning_accuracy", 1.0)]
    if "language" in REWARDS:
        spec.append(RewardComponent("language", 1.0, tags(cfg)))
    rm = cfg.reward_model
    params = rm_params(cfg, rm_dir or "")
    spec += [
        RewardComponent("rm_helpful", rm.helpful_weight, params),
        RewardComponent("rm_harmless", rm.harmless_weight, dict(params)),
    ]
    return tuple(spec)


def all_rl_prompts(cfg, sdir: Path) -> tuple[Path, int]:
    """The training prompts: reasoning tasks plus ``general.rl_share`` general prompts."""
    reasoning = task_examples(cfg.data, "train")
    share = cfg.general.rl_share  # in [0, 1): checked at load
    general = general_examples(round(share / (1 - share) * len(reasoning)), cfg.seed + 1)
    prompts = reasoning + general
    random.Random(f"all-rl:{cfg.seed}").shuffle(prompts)
    return examples_file(prompts, sdir / "prompts.jsonl"), len(general)


def rm_summary(metrics: list[dict]) -> dict:
    """Stage-4 facts for the report: reward components averaged over the last 5 steps (means
    over every sample of a step, so the RM components include the 0 of reasoning rows)."""
    tail = metrics[-5:]
    out: dict = {}
    for name in ("reward/rm_helpful", "reward/rm_harmless", "reward/reasoning_accuracy"):
        vals = [m[name] for m in tail if name in m]
        if vals:
            out[f"last5 {name}"] = round(sum(vals) / len(vals), 4)
    return out


def score_general_eval(cfg, rm_dir: str, eval_path: Path, general) -> dict[str, float]:
    """Mean RM helpfulness (summary) / harmlessness (whole response) of a stage's general-chat
    evaluation samples: the stage-by-stage view of what stage 4 optimises."""
    from r1lab.rewards.base import Completion
    from r1lab.rewards.combine import score_completions

    rows = read_jsonl(eval_path)
    if not rows:
        return {}
    completions = [Completion(r["completion"], general[r["problem_index"]].as_row()) for r in rows]
    params = rm_params(cfg, rm_dir)
    spec = [RewardComponent(n, 1.0, params) for n in RM_COMPONENTS]
    table = score_completions(spec, completions)
    if table.num_errors:
        first = next(r.error for res in table.results.values() for r in res if r.error)
        raise R1LabError(f"scoring the general evaluation with the reward model failed: {first}")
    n = len(completions)
    return {f"general_{k}": sum(v) / n for k, v in table.components.items()}
