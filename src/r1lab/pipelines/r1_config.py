"""Typed config of the four-stage DeepSeek-R1 pipeline (algorithms.md §10.3). Defaults live here.

One recipe drives: 1 cold-start SFT of the base -> 2 reasoning RL -> 3 rejection sampling of the
stage-2 model + general data, SFT of the BASE -> 4 RL for all scenarios, general prompts
scored by ``reward_model``. Empty reward specs mean "automatic" (see `r1.stage_rewards`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from r1lab.config import constrained, count, existing_dir, existing_file, prefix_of, within
from r1lab.data.filters import FilterSpec, default_filters
from r1lab.data.readable import ReadableFormat
from r1lab.pipelines.pretrain import PretrainConfig
from r1lab.pipelines.reward_model import RewardModelTrainConfig
from r1lab.pipelines.rl_config import (
    DataConfig,
    EvalConfig,
    GRPOConfig,
    ModelConfig,
    SamplingConfig,
)
from r1lab.pipelines.rs_config import RSSamplingConfig
from r1lab.pipelines.sft_config import SFTTrainConfig
from r1lab.rewards.combine import RewardComponent

STAGES = ("cold_start", "reasoning_rl", "rejection_sft", "all_rl")

# Sections whose R1 defaults differ from the shared classes' are subclasses, not
# ``default_factory=lambda: Cls(x=...)``: a recipe that sets one key of a section rebuilds it from
# the class defaults, which would silently drop such a factory's values.


@dataclass(frozen=True)
class ChatDataConfig(DataConfig):
    template: str = "chat"  # the model's chat template (cold-start SFT teaches the format)


@dataclass(frozen=True)
class ChatSamplingConfig(SamplingConfig):
    stop: tuple[str, ...] = ()  # the chat template's end-of-turn token is an EOS id


@dataclass(frozen=True)
class R1EvalConfig(EvalConfig):
    format_reward: str = "format_r1"  # the readable pattern: reasoning block, then a summary


@dataclass(frozen=True)
class R1ZeroSamplingConfig(RSSamplingConfig):
    stop: tuple[str, ...] = ("</answer>",)


def _readable_filters() -> tuple[FilterSpec, ...]:
    return (FilterSpec("readable"), *default_filters())


@constrained(
    seed_file=existing_file(),
    n_seed=count(),
    r1_zero_prompts=count(),
    r1_zero_k=count(),
)
@dataclass(frozen=True)
class ColdStartConfig:
    seed_file: str = ""  # hand-written long-CoT rows; "" = synthetic seed rows from data.tasks
    n_seed: int = 200
    r1_zero_model: str = "base"  # source (b): "base", a checkpoint path, or "" to skip it
    r1_zero_prompts: int = 128
    r1_zero_k: int = 4
    r1_zero_sampling: R1ZeroSamplingConfig = field(default_factory=R1ZeroSamplingConfig)
    filters: tuple[FilterSpec, ...] = field(default_factory=default_filters)
    sft: SFTTrainConfig = field(default_factory=SFTTrainConfig)


@dataclass(frozen=True)
class RLStageConfig:
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    rewards: tuple[RewardComponent, ...] = ()  # () = automatic


@constrained(n_prompts=count(), k=count(), max_per_prompt=count(0), prompts_per_chunk=count())
@dataclass(frozen=True)
class RejectionStageConfig:
    n_prompts: int = 256
    k: int = 4
    max_per_prompt: int = 2
    min_score: float = 1.0  # a sample is kept when the accuracy reward scores at least this
    prompts_per_chunk: int = 16
    sampling: RSSamplingConfig = field(default_factory=RSSamplingConfig)
    filters: tuple[FilterSpec, ...] = field(default_factory=_readable_filters)


@constrained(
    file=existing_file(),
    n=count(),
    ratio=within(0, 1, high_open=True),
    rl_share=within(0, 1, high_open=True),
    eval_n=count(0),
)
@dataclass(frozen=True)
class GeneralConfig:
    file: str = ""  # SFT rows of non-reasoning data; "" = the synthetic general-chat set
    n: int = 400  # synthetic pool size
    ratio: float = 0.25  # share of general rows in the stage-3 SFT data (R1: ~200k of ~800k)
    rl_share: float = 0.25  # share of general prompts in the stage-4 RL prompt set
    eval_n: int = 24  # general prompts evaluated after each stage (0 = none)


@constrained(path=existing_dir(), max_len=count(), batch_size=count())
@dataclass(frozen=True)
class RewardModelConfig:
    """Stage 4's preference RM (R1 §2.3.4): helpfulness on the summary, harmlessness on all."""

    path: str = ""  # HF sequence-classification dir (num_labels 1); "" = train the tiny RM
    helpful_weight: float = 1.0
    harmless_weight: float = 1.0
    max_len: int = 256  # tokens per scored (prompt, response); truncation keeps the end
    batch_size: int = 32
    train: RewardModelTrainConfig = field(default_factory=RewardModelTrainConfig)


@constrained(threads=count(0), stages=prefix_of(STAGES), sft_max_len=count())
@dataclass(frozen=True)
class R1Config:
    seed: int = 0
    output_dir: str = "runs"
    run_name: str = ""
    threads: int = 0
    progress: bool = True
    stages: tuple[str, ...] = STAGES  # a prefix of STAGES to run (finished ones are skipped)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    data: ChatDataConfig = field(default_factory=ChatDataConfig)
    sampling: ChatSamplingConfig = field(default_factory=ChatSamplingConfig)
    readable: ReadableFormat = field(default_factory=ReadableFormat)
    sft_max_len: int = 384
    cold_start: ColdStartConfig = field(default_factory=ColdStartConfig)
    reasoning_rl: RLStageConfig = field(default_factory=RLStageConfig)
    rejection: RejectionStageConfig = field(default_factory=RejectionStageConfig)
    general: GeneralConfig = field(default_factory=GeneralConfig)
    sft: SFTTrainConfig = field(default_factory=SFTTrainConfig)
    all_rl: RLStageConfig = field(default_factory=RLStageConfig)
    reward_model: RewardModelConfig = field(default_factory=RewardModelConfig)
    eval: R1EvalConfig = field(default_factory=R1EvalConfig)
