"""Typed config of distillation (R1 §2.4): teacher -> rejection-sampled traces -> student SFT."""

from __future__ import annotations

from dataclasses import dataclass, field

from r1lab.config import constrained, count, prefix_of
from r1lab.pipelines.pretrain import PretrainConfig
from r1lab.pipelines.r1_config import ChatDataConfig, R1EvalConfig, RejectionStageConfig
from r1lab.pipelines.rl_config import ModelConfig
from r1lab.pipelines.rs_config import TeacherConfig
from r1lab.pipelines.sft_config import SFTTrainConfig
from r1lab.rewards.combine import RewardComponent

STAGES = ("sample", "sft")  # distill.run runs a prefix of these


@dataclass(frozen=True)
class TeacherModelConfig(ModelConfig):
    path: str = ""  # a checkpoint directory; required unless endpoint.base_url is set


def _rewards() -> tuple[RewardComponent, ...]:
    return (RewardComponent("accuracy", 1.0),)


# teacher.path must exist only when there is no endpoint and only when distill runs (it is often
# the product of an earlier `r1lab r1` run): `distill.run` checks it first, before any model loads
@constrained(threads=count(0), stages=prefix_of(STAGES), sft_max_len=count())
@dataclass(frozen=True)
class DistillConfig:
    seed: int = 0
    output_dir: str = "runs"
    run_name: str = ""
    threads: int = 0
    progress: bool = True
    stages: tuple[str, ...] = ("sample", "sft")  # a prefix; finished stages are skipped
    teacher: TeacherModelConfig = field(default_factory=TeacherModelConfig)
    endpoint: TeacherConfig = field(default_factory=TeacherConfig)  # base_url set = use it
    student: ModelConfig = field(default_factory=ModelConfig)  # "tiny" = the embedded base
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)  # the tiny student base
    data: ChatDataConfig = field(default_factory=ChatDataConfig)
    sample: RejectionStageConfig = field(default_factory=RejectionStageConfig)
    rewards: tuple[RewardComponent, ...] = field(default_factory=_rewards)
    sft: SFTTrainConfig = field(default_factory=SFTTrainConfig)
    sft_max_len: int = 384
    eval: R1EvalConfig = field(default_factory=R1EvalConfig)
    eval_teacher: bool = True  # also evaluate a local teacher checkpoint for the report
