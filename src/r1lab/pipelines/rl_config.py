"""Typed config of an RL run (R1-Zero / GRPO family). Every default lives here, once.

A recipe YAML overrides any field; ``model.path: tiny`` means the embedded tiny base model built
by the ``pretrain`` section (cached), anything else is a Hugging Face directory or hub id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from r1lab.doctor.config import DoctorConfig
from r1lab.pipelines.pretrain import PretrainConfig
from r1lab.rewards.combine import RewardComponent


@dataclass(frozen=True)
class ModelConfig:
    path: str = "tiny"
    dtype: str = "float32"


@dataclass(frozen=True)
class DataConfig:
    tasks: tuple[str, ...] = ("arith",)
    difficulty: int = 1
    n_train: int = 2000
    n_test: int = 100
    template: str = "r1_zero"  # r1_zero | chat | plain
    seed: int = 0
    train_file: str | None = None  # JSONL/Parquet rows with question, answer, verifier
    test_file: str | None = None


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ("</answer>",)
    batch_size: int = 128  # rows per generation chunk


@dataclass(frozen=True)
class GRPOConfig:
    steps: int = 30
    prompts_per_step: int = 16
    group_size: int = 8
    mu: int = 1  # policy updates per rollout batch
    micro_batch_size: int = 64
    lr: float = 3e-4
    warmup_steps: int = 3
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    adv_estimator: str = "grpo"
    adv_params: dict[str, Any] = field(default_factory=dict)  # e.g. {eps: 1e-4} for grpo
    policy_loss: str = "ppo_clip"
    loss_agg: str = "seq_mean_token_mean"
    eps_low: float = 0.2
    eps_high: float = 0.2
    beta: float = 0.04
    kl_estimator: str = "k3"
    const_len: int = 0  # seq_mean_token_sum_norm constant; 0 = sampling.max_new_tokens
    reward_error_threshold: float = 0.5  # stop when a component fails on more than this share
    dynamic_sampling: bool = False  # DAPO: keep only groups whose rewards differ, refill
    max_gen_rounds: int = 4  # generation rounds allowed per step with dynamic sampling
    mask_truncated: bool = False  # DAPO overlong filtering: truncated samples leave the loss


@dataclass(frozen=True)
class EvalConfig:
    k: int = 8
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 64
    format_reward: str = "format"


def _default_rewards() -> tuple[RewardComponent, ...]:
    return (RewardComponent("accuracy", 1.0), RewardComponent("format", 0.5))


@dataclass(frozen=True)
class RLConfig:
    seed: int = 0
    output_dir: str = "runs"
    run_name: str = ""
    threads: int = 0  # torch threads; 0 = torch default
    progress: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    rewards: tuple[RewardComponent, ...] = field(default_factory=_default_rewards)
    eval: EvalConfig = field(default_factory=EvalConfig)
    doctor: DoctorConfig = field(default_factory=DoctorConfig)
