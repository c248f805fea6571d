"""Typed config of the Table 6 experiment in miniature (R1 §4.1): distillation vs RL for a smaller
student. Every default lives here; `recipes/distill_vs_rl_tiny.yaml` holds the CPU sizing.

Both arms start from the same student base and use the same prompts (``data``) and rule-based
rewards (``rewards``): (a) SFT on the RL-trained teacher's verified traces, (b) R1-Zero-style RL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from r1lab.config import constrained, count, one_of
from r1lab.data.filters import FilterSpec, default_filters
from r1lab.doctor.config import DoctorConfig
from r1lab.pipelines.pretrain import PretrainConfig
from r1lab.pipelines.r1_config import R1ZeroSamplingConfig, RejectionStageConfig
from r1lab.pipelines.rl_config import DataConfig, EvalConfig, GRPOConfig, SamplingConfig
from r1lab.pipelines.sft_config import SFTTrainConfig
from r1lab.rewards.combine import RewardComponent

BUDGETS = ("sequences", "none")


@dataclass(frozen=True)
class StudentPretrainConfig(PretrainConfig):
    size: str = "300k"  # the smaller student (models.tiny.SIZES)


@dataclass(frozen=True)
class TeacherSection:
    path: str = ""  # an RL-trained checkpoint; "" = R1-Zero RL of `base`, in this experiment
    base: str = "tiny"  # the teacher's base: "tiny" = pretrained from `pretrain` (cached), or a dir
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)  # the 1m tiny base
    grpo: GRPOConfig = field(default_factory=GRPOConfig)  # the teacher's RL when path is ""


@dataclass(frozen=True)
class StudentSection:
    base: str = "tiny"  # "tiny" = pretrained from `pretrain` (cached, same corpus), or a dir
    pretrain: StudentPretrainConfig = field(default_factory=StudentPretrainConfig)


@dataclass(frozen=True)
class TraceSampleConfig(RejectionStageConfig):
    """Rejection sampling of the teacher in the R1-Zero format (no readable-pattern filter)."""

    sampling: R1ZeroSamplingConfig = field(default_factory=R1ZeroSamplingConfig)
    filters: tuple[FilterSpec, ...] = field(default_factory=default_filters)


@constrained(sft_max_len=count())
@dataclass(frozen=True)
class DistillArmConfig:
    sample: TraceSampleConfig = field(default_factory=TraceSampleConfig)
    sft: SFTTrainConfig = field(default_factory=SFTTrainConfig)
    sft_max_len: int = 192


@constrained(budget=one_of(BUDGETS))
@dataclass(frozen=True)
class RLArmConfig:
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    # "sequences": grpo.steps = ceil(sequences the distilled student trained on / (prompts_per_step
    # * group_size)), i.e. both students see the same number of training sequences;
    # "none": grpo.steps as given.
    budget: str = "sequences"


def _rewards() -> tuple[RewardComponent, ...]:
    return (RewardComponent("accuracy", 1.0), RewardComponent("format", 0.5))


@constrained(threads=count(0))
@dataclass(frozen=True)
class DistillVsRLConfig:
    seed: int = 0
    output_dir: str = "runs"
    run_name: str = ""
    threads: int = 0
    progress: bool = True
    teacher: TeacherSection = field(default_factory=TeacherSection)
    student: StudentSection = field(default_factory=StudentSection)
    data: DataConfig = field(default_factory=DataConfig)  # R1-Zero template by default
    sampling: SamplingConfig = field(default_factory=SamplingConfig)  # RL rollouts, both RLs
    rewards: tuple[RewardComponent, ...] = field(default_factory=_rewards)
    distill: DistillArmConfig = field(default_factory=DistillArmConfig)
    rl: RLArmConfig = field(default_factory=RLArmConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    doctor: DoctorConfig = field(default_factory=DoctorConfig)  # both RL runs
