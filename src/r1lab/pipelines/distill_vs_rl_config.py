"""Typed config of the Table 6 experiment in miniature (R1 §4.1): distillation vs RL for a smaller
student. Every default lives here; `recipes/distill_vs_rl_tiny.yaml` holds the CPU sizing.

Both arms start from the same student base and use the same prompts (``data``) and rule-based
rewards (``rewards``): (a) SFT on the RL-trained teacher's verified traces, (b) R1-Zero-style RL.
``teacher.rl``, ``rl``, ``distill.sample`` and ``distill.sft`` are whole stage configs (RL, RL,
rejection sampling, SFT); the experiment sets their model, data, rewards, eval and run-wide keys
(`r1_common.OWNED`), refused in those sections (docs/pipelines.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from r1lab.config import constrained, count, one_of
from r1lab.data.filters import FilterSpec, default_filters
from r1lab.pipelines.pretrain import PretrainConfig
from r1lab.pipelines.r1_common import OWNED, owned_by_pipeline
from r1lab.pipelines.r1_config import R1RejectionConfig, R1ZeroSamplingConfig
from r1lab.pipelines.rl_config import DataConfig, EvalConfig, RLConfig
from r1lab.pipelines.sft_config import SFTConfig
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
    rl: RLConfig = field(default_factory=RLConfig)  # the teacher's RL when path is ""


@dataclass(frozen=True)
class StudentSection:
    base: str = "tiny"  # "tiny" = pretrained from `pretrain` (cached, same corpus), or a dir
    pretrain: StudentPretrainConfig = field(default_factory=StudentPretrainConfig)


@dataclass(frozen=True)
class TraceSampleConfig(R1RejectionConfig):
    """Rejection sampling of the teacher in the R1-Zero format (no readable-pattern filter)."""

    sampling: R1ZeroSamplingConfig = field(default_factory=R1ZeroSamplingConfig)
    filters: tuple[FilterSpec, ...] = field(default_factory=default_filters)


@dataclass(frozen=True)
class DistillArmConfig:
    sample: TraceSampleConfig = field(default_factory=TraceSampleConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)


def _rewards() -> tuple[RewardComponent, ...]:
    return (RewardComponent("accuracy", 1.0), RewardComponent("format", 0.5))


_SAME = {"rewards": "top level: the same for every run of the experiment"}
_OWNED = {
    "teacher.rl": OWNED["rl"] | _SAME,
    "rl": OWNED["rl"] | _SAME,
    "distill.sample": OWNED["rs"] | _SAME,
    "distill.sft": OWNED["sft"],
}


@constrained(owned_by_pipeline(_OWNED), threads=count(0), rl_budget=one_of(BUDGETS))
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
    rewards: tuple[RewardComponent, ...] = field(default_factory=_rewards)  # every run's
    distill: DistillArmConfig = field(default_factory=DistillArmConfig)  # arm (a)
    rl: RLConfig = field(default_factory=RLConfig)  # arm (b): the student's RL
    # "sequences": rl.grpo.steps = ceil(sequences the distilled student trained on /
    # (prompts_per_step * group_size)), i.e. both students see the same number of training
    # sequences; "none": rl.grpo.steps as given.
    rl_budget: str = "sequences"
    eval: EvalConfig = field(default_factory=EvalConfig)  # every evaluation; the RL runs'
