"""Typed config of the four-stage DeepSeek-R1 pipeline (algorithms.md §10.3). Defaults live here.

One recipe drives: 1 cold-start SFT of the base -> 2 reasoning RL -> 3 rejection sampling of the
stage-2 model + general data, SFT of the BASE -> 4 RL for all scenarios, general prompts
scored by ``reward_model``. Each stage's section is that stage's whole config (`RLConfig`,
`SFTConfig`, `RSConfig`) overlaying its R1 defaults; the keys the pipeline sets itself
(`r1_common.OWNED`) are refused there (docs/pipelines.md). Empty reward specs mean
"automatic" (see `r1.stage_rewards`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from r1lab.config import constrained, count, existing_dir, existing_file, prefix_of, within
from r1lab.data.filters import FilterSpec, default_filters
from r1lab.data.readable import ReadableFormat
from r1lab.pipelines.pretrain import PretrainConfig
from r1lab.pipelines.r1_common import OWNED, owned_by_pipeline
from r1lab.pipelines.reward_model import RewardModelTrainConfig
from r1lab.pipelines.rl_config import DataConfig, EvalConfig, ModelConfig, RLConfig, SamplingConfig
from r1lab.pipelines.rs_config import RSConfig, RSSamplingConfig
from r1lab.pipelines.sft_config import SFTConfig
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


@dataclass(frozen=True)
class R1ZeroSampleConfig(RSConfig):
    """Cold-start source (b): correct R1-Zero-format samples (reformatted by `cold_start`)."""

    n_prompts: int = 128
    k: int = 4
    max_per_prompt: int = 1
    sampling: R1ZeroSamplingConfig = field(default_factory=R1ZeroSamplingConfig)
    rewards: tuple[RewardComponent, ...] = field(
        default_factory=lambda: (RewardComponent("accuracy"), RewardComponent("format", 0.0))
    )
    filters: tuple[FilterSpec, ...] = ()


@dataclass(frozen=True)
class R1RLConfig(RLConfig):
    sampling: ChatSamplingConfig = field(default_factory=ChatSamplingConfig)
    rewards: tuple[RewardComponent, ...] = ()  # () = automatic (`r1.stage_rewards`)


@dataclass(frozen=True)
class R1RejectionConfig(RSConfig):
    n_prompts: int = 256
    prompts_per_chunk: int = 16
    filters: tuple[FilterSpec, ...] = field(
        default_factory=lambda: (FilterSpec("readable"), *default_filters())
    )


@constrained(seed_file=existing_file(), n_seed=count())
@dataclass(frozen=True)
class ColdStartConfig:
    seed_file: str = ""  # hand-written long-CoT rows; "" = synthetic seed rows from data.tasks
    n_seed: int = 200
    r1_zero_model: str = "base"  # source (b): "base", a checkpoint path, or "" to skip it
    r1_zero: R1ZeroSampleConfig = field(default_factory=R1ZeroSampleConfig)
    filters: tuple[FilterSpec, ...] = field(default_factory=default_filters)
    sft: SFTConfig = field(default_factory=SFTConfig)


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


# stage sections: what the pipeline sets in each (refused there, at load)
_OWNED = {
    "cold_start.r1_zero": OWNED["rs"],
    "cold_start.sft": OWNED["sft"],
    "reasoning_rl": OWNED["rl"],
    "rejection": OWNED["rs"] | dict(reasoning="the top-level readable tags"),
    "sft": OWNED["sft"],
    "all_rl": OWNED["rl"],
}


@constrained(owned_by_pipeline(_OWNED), threads=count(0), stages=prefix_of(STAGES))
@dataclass(frozen=True)
class R1Config:
    seed: int = 0
    output_dir: str = "runs"
    run_name: str = ""
    threads: int = 0
    progress: bool = True
    stages: tuple[str, ...] = STAGES  # a prefix of STAGES to run (finished ones are skipped)
    model: ModelConfig = field(default_factory=ModelConfig)  # the base; dtype/device: every stage
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    data: ChatDataConfig = field(default_factory=ChatDataConfig)  # every stage's task prompts
    readable: ReadableFormat = field(default_factory=ReadableFormat)
    cold_start: ColdStartConfig = field(default_factory=ColdStartConfig)
    reasoning_rl: R1RLConfig = field(default_factory=R1RLConfig)
    rejection: R1RejectionConfig = field(default_factory=R1RejectionConfig)
    general: GeneralConfig = field(default_factory=GeneralConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)  # stage 3's SFT of the base
    all_rl: R1RLConfig = field(default_factory=R1RLConfig)
    reward_model: RewardModelConfig = field(default_factory=RewardModelConfig)
    eval: R1EvalConfig = field(default_factory=R1EvalConfig)  # after every stage; the RL stages'
