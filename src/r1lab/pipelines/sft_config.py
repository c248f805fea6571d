"""Typed config of an SFT run (cold start, stage-3 SFT, distillation). Every default lives here.

``lora`` and ``dist`` are the RL run's sections (the same `Learner` trains both).
``data.train_file`` is a JSONL/Parquet file or ``hf:NAME[:split]`` of chat-message or
prompt/completion rows (see `r1lab.data.chat`). ``model.path: tiny`` is the embedded tiny base.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from r1lab.config import above, at_least, constrained, count, existing_file, one_of, within
from r1lab.pipelines.pretrain import PretrainConfig
from r1lab.pipelines.rl_config import DistConfig, LoraSettings, ModelConfig

SCHEDULES = ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_min_lr")


@constrained(
    train_file=existing_file(),
    eval_file=existing_file(),
    eval_fraction=within(0, 1, high_open=True),
    eval_max_samples=count(0),
    max_len=count(),
)
@dataclass(frozen=True)
class SFTDataConfig:
    train_file: str = ""
    eval_file: str = ""  # held-out set; when empty, eval_fraction of train_file is held out
    eval_fraction: float = 0.05
    eval_max_samples: int = 256  # cap on held-out samples (eval loss cost)
    prompt_format: Literal["chat", "raw"] = "chat"  # how prompt/completion rows are rendered
    max_len: int = 512  # tokens per sample; longer samples keep their first max_len tokens


@constrained(
    epochs=count(),
    max_steps=count(0),
    batch_tokens=count(),
    lr=above(0),
    schedule=one_of(SCHEDULES),
    warmup_ratio=within(0, 1),
    weight_decay=at_least(0),
    max_grad_norm=above(0),
    eval_every=count(0),
    save_every=count(0),
    keep_checkpoints=count(),
)
@dataclass(frozen=True)
class SFTTrainConfig:
    epochs: int = 2
    max_steps: int = 0  # > 0 stops early after that many optimizer steps
    batch_tokens: int = 1024  # tokens per optimizer step (samples are never split)
    packing: bool = True  # padding-free packing; False pads the same batches into rows
    lr: float = 1e-3
    schedule: str = "cosine"  # one of SCHEDULES (transformers.get_scheduler)
    schedule_params: dict[str, Any] = field(default_factory=dict)  # e.g. {min_lr_rate: 0.1}
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    eval_every: int = 0  # steps between held-out evals; 0 = at the end of every epoch
    save_every: int = 0  # steps between resumable checkpoints; 0 = the final one only
    keep_checkpoints: int = 1


@constrained(threads=count(0))
@dataclass(frozen=True)
class SFTConfig:
    seed: int = 0
    output_dir: str = "runs"
    run_name: str = ""
    threads: int = 0  # torch threads; 0 = torch default
    progress: bool = True
    resume: bool = True  # continue from the run directory's latest checkpoint
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    data: SFTDataConfig = field(default_factory=SFTDataConfig)
    train: SFTTrainConfig = field(default_factory=SFTTrainConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)  # enabled: train adapters only
    dist: DistConfig = field(default_factory=DistConfig)  # under torchrun: DDP or FSDP2
