"""Typed config of distillation (R1 §2.4): teacher -> rejection-sampled traces -> student SFT.

``sample`` is the whole rejection-sampling config (`RSConfig`: its ``teacher`` section names an
OpenAI-compatible endpoint, its ``rewards`` decide what is correct) and ``sft`` the whole SFT
config of the student; the pipeline sets the keys `r1_common.OWNED` lists
(the teacher / student model, data, run-wide keys), refused in those sections (docs/pipelines.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from r1lab.config import constrained, count, prefix_of
from r1lab.pipelines.pretrain import PretrainConfig
from r1lab.pipelines.r1_common import OWNED, owned_by_pipeline
from r1lab.pipelines.r1_config import ChatDataConfig, R1EvalConfig, R1RejectionConfig
from r1lab.pipelines.rl_config import ModelConfig
from r1lab.pipelines.sft_config import SFTConfig

STAGES = ("sample", "sft")  # distill.run runs a prefix of these


@dataclass(frozen=True)
class TeacherModelConfig(ModelConfig):
    path: str = ""  # a checkpoint directory; required unless sample.teacher.base_url is set


_OWNED = {"sample": OWNED["rs"] | {"model": "teacher"}, "sft": OWNED["sft"] | {"model": "student"}}


# teacher.path must exist only when there is no endpoint and only when distill runs (it is often
# the product of an earlier `r1lab r1` run): `distill.run` checks it first, before any model loads
@constrained(owned_by_pipeline(_OWNED), threads=count(0), stages=prefix_of(STAGES))
@dataclass(frozen=True)
class DistillConfig:
    seed: int = 0
    output_dir: str = "runs"
    run_name: str = ""
    threads: int = 0
    progress: bool = True
    stages: tuple[str, ...] = ("sample", "sft")  # a prefix; finished stages are skipped
    teacher: TeacherModelConfig = field(default_factory=TeacherModelConfig)
    student: ModelConfig = field(default_factory=ModelConfig)  # "tiny" = the embedded base
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)  # the tiny student base
    data: ChatDataConfig = field(default_factory=ChatDataConfig)
    sample: R1RejectionConfig = field(default_factory=R1RejectionConfig)  # .teacher: endpoint
    sft: SFTConfig = field(default_factory=SFTConfig)
    eval: R1EvalConfig = field(default_factory=R1EvalConfig)
    eval_teacher: bool = True  # also evaluate a local teacher checkpoint for the report
