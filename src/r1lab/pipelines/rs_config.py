"""Typed config of rejection sampling (R1 stage 3 data, distillation data). Defaults live here.

Samples come from ``model.path`` (a checkpoint directory or ``tiny``) on the ``rollout.engine``
(hf | vllm), unless ``teacher.base_url`` names an OpenAI-compatible endpoint (`EndpointConfig` of
engines/generators.py). Prompts come from ``data`` (synthetic tasks or a file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from r1lab.config import constrained, count
from r1lab.data.filters import FilterSpec, default_filters
from r1lab.engines.generators import EndpointConfig as TeacherConfig
from r1lab.pipelines.pretrain import PretrainConfig
from r1lab.pipelines.rl_config import DataConfig, ModelConfig, RolloutConfig, SamplingConfig
from r1lab.rewards.combine import RewardComponent


@dataclass(frozen=True)
class RSSamplingConfig(SamplingConfig):
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 128
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReasoningTags:
    """Where the reasoning is, for the filters (R1 filters the chain of thought)."""

    open_tag: str = "<think>"
    close_tag: str = "</think>"


def _default_rewards() -> tuple[RewardComponent, ...]:
    return (RewardComponent("accuracy", 1.0),)


@constrained(
    threads=count(0),
    n_prompts=count(0),
    k=count(),
    prompts_per_chunk=count(),
    max_per_prompt=count(0),
)
@dataclass(frozen=True)
class RSConfig:
    seed: int = 0
    output_dir: str = "runs"
    run_name: str = ""
    threads: int = 0
    progress: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)  # base_url set: sample it
    rollout: RolloutConfig = field(default_factory=RolloutConfig)  # else model.path with this
    data: DataConfig = field(default_factory=DataConfig)
    split: Literal["train", "test"] = "train"
    n_prompts: int = 0  # 0 = every prompt of the split
    sampling: RSSamplingConfig = field(default_factory=RSSamplingConfig)
    k: int = 4  # samples per prompt
    prompts_per_chunk: int = 8  # the unit of resumption: a chunk is committed whole or not at all
    rewards: tuple[RewardComponent, ...] = field(default_factory=_default_rewards)
    keep_component: str = "accuracy"  # a sample is correct when this component ...
    min_score: float = 1.0  # ... scores at least this, with no error
    filters: tuple[FilterSpec, ...] = field(default_factory=default_filters)
    reasoning: ReasoningTags = field(default_factory=ReasoningTags)
    dedupe: bool = True  # drop a sample whose normalized text repeats one kept for the prompt
    max_per_prompt: int = 2  # cap of kept samples per prompt (0 = no cap)
    output: str = "dataset.jsonl"  # file name in the run directory: .jsonl or .parquet
    checkpoint_step: int = -1  # provenance; -1 = read from the checkpoint when it records one
