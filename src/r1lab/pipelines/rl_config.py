"""Typed config of an RL run (R1-Zero / GRPO family). Every default lives here, once.

A recipe YAML overrides any field; ``model.path: tiny`` means the embedded tiny base model built
by the ``pretrain`` section (cached), anything else is a Hugging Face directory or hub id.
What each field allows is declared with `r1lab.config.constrained` above its class (checked when
the config loads, before data or model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from r1lab.algo import ADVANTAGES, AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES
from r1lab.config import (
    above,
    at_least,
    constrained,
    count,
    device,
    existing_file,
    one_of,
    registered,
    within,
)
from r1lab.doctor.config import DoctorConfig
from r1lab.models.hf_load import DTYPES
from r1lab.pipelines.pretrain import PretrainConfig
from r1lab.rewards.combine import RewardComponent
from r1lab.types import SamplingParams


@constrained(dtype=one_of(DTYPES), device=device())
@dataclass(frozen=True)
class ModelConfig:
    path: str = "tiny"
    dtype: str = "float32"
    device: str = "auto"  # auto = the GPU when one is visible, else the CPU (engines/device.py)


@constrained(
    difficulty=count(),
    n_train=count(),
    n_test=count(),
    train_file=existing_file(),
    test_file=existing_file(),
)
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
    skip_bad_rows: bool = False  # skip a file's bad rows (metric data/skipped_rows), not fail


@constrained(
    temperature=above(0),
    top_p=within(0, 1, low_open=True),
    top_k=count(0),
    max_new_tokens=count(),
    batch_size=count(),
)
@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ("</answer>",)
    batch_size: int = 128  # rows per generation chunk

    def params(self, seed: int) -> SamplingParams:
        """These settings as a generator call's `SamplingParams` drawing with ``seed``."""
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_new_tokens=self.max_new_tokens,
            stop=self.stop,
            seed=seed,
        )


# estimators whose baseline is not the prompt's group: one sample per prompt is enough
SINGLE_SAMPLE_ESTIMATORS = ("reinforce_pp",)


def _group_size_fits_estimator(g: GRPOConfig) -> tuple[str, str] | None:
    """A group baseline (mean, std, leave-one-out) of one sample is undefined: every advantage
    would be 0 (or the raw reward) and nothing is learned."""
    if g.adv_estimator in SINGLE_SAMPLE_ESTIMATORS:
        return None if g.group_size >= 1 else ("group_size", "an integer >= 1")
    if g.group_size >= 2:
        return None
    return "group_size", f"an integer >= 2 for adv_estimator {g.adv_estimator!r} (group baseline)"


def _adv_eps_not_negative(g: GRPOConfig) -> tuple[str, str] | None:
    eps = g.adv_params.get("eps", 0.0)
    if isinstance(eps, int | float) and not isinstance(eps, bool) and 0 <= eps < float("inf"):
        return None
    return "adv_params.eps", "a finite number >= 0"


def _mini_batches_fit_the_groups(g: GRPOConfig) -> tuple[str, str] | None:
    """A mini-batch holds whole prompt groups, so there are at most as many as groups per step
    (under torchrun the per-process share is checked again when the run starts)."""
    if g.mini_batches <= g.prompts_per_step:
        return None
    return "mini_batches", f"an integer <= grpo.prompts_per_step ({g.prompts_per_step})"


def _tis_needs_trainer_logprobs(g: GRPOConfig) -> tuple[str, str] | None:
    if g.is_correction == "off" or g.old_logprobs == "trainer":
        return None
    return "is_correction", "off, or grpo.old_logprobs=trainer (tis reweights by the trainer's)"


@constrained(
    _group_size_fits_estimator,
    _adv_eps_not_negative,
    _mini_batches_fit_the_groups,
    _tis_needs_trainer_logprobs,
    steps=count(),
    mini_batches=count(),
    prompts_per_step=count(),
    mu=count(),
    micro_batch_size=count(),
    micro_batch_tokens=count(0),
    lr=above(0),
    warmup_steps=count(0),
    weight_decay=at_least(0),
    max_grad_norm=above(0),
    adv_estimator=registered(ADVANTAGES),
    policy_loss=registered(POLICY_LOSSES),
    loss_agg=registered(AGGREGATIONS),
    eps_low=at_least(0),
    eps_high=at_least(0),
    beta=at_least(0),
    kl_estimator=registered(KL_ESTIMATORS),
    const_len=count(0),
    reward_error_threshold=within(0, 1),
    max_gen_rounds=count(),
    is_cap=above(0),
)
@dataclass(frozen=True)
class GRPOConfig:
    steps: int = 30
    prompts_per_step: int = 16
    group_size: int = 8
    mu: int = 1  # passes over the rollout batch (PPO epochs)
    # optimizer steps per pass: the batch's groups shuffled and split (docs/rl_step.md)
    mini_batches: int = 1
    micro_batch_size: int = 64
    micro_batch_tokens: int = 0  # >0: micro-batches packed to this many padded tokens (0 = by rows)
    gradient_checkpointing: bool = False  # recompute layer activations in backward (memory)
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
    dynamic_sampling_metric: str = "accuracy"  # a reward component's name, or reward (the total)
    max_gen_rounds: int = 4  # generation rounds allowed per step with dynamic sampling
    mask_truncated: bool = False  # DAPO overlong filtering: truncated samples leave the loss
    # the PPO ratio's denominator: trainer = recomputed by the learner under the rollout weights
    # before the first update (TRL, verl); sampler = the rollout engine's (top-p/top-k: truncated)
    old_logprobs: Literal["sampler", "trainer"] = "trainer"
    # sampler/trainer mismatch (algo/is_correction.py): off | tis (needs old_logprobs: trainer).
    # Each token's policy loss is weighted by min(exp(trainer - sampler logp), is_cap)
    is_correction: str = "off"
    is_cap: float = 2.0


@constrained(
    gpu_memory_utilization=within(0, 1, low_open=True),
    max_model_len=count(0),
    sleep_level=one_of((1, 2)),
)
@dataclass(frozen=True)
class RolloutConfig:
    """Which engine samples the rollouts. ``vllm`` needs the [vllm] extra and a CUDA GPU."""

    engine: Literal["hf", "vllm"] = "hf"
    # vLLM only (engines/vllm.py): colocated with the learner on the same GPU
    gpu_memory_utilization: float = 0.3  # share of GPU memory vLLM may take (weights + KV cache)
    max_model_len: int = 0  # 0 = the model config's context length
    enforce_eager: bool = False  # True skips CUDA-graph capture (faster start, slower decode)
    sleep_level: int = 1  # vLLM sleep during the update: 1 offloads weights to CPU, 2 drops them
    dtype: str = "auto"  # vLLM weights/activations; auto = the policy's dtype


@constrained(r=count(), alpha=above(0), dropout=within(0, 1, high_open=True))
@dataclass(frozen=True)
class LoraSettings:
    """LoRA (PEFT) on the policy; the KL reference is then the base with adapters disabled."""

    enabled: bool = False
    r: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )


@constrained(every_steps=count(0), keep_last=count())
@dataclass(frozen=True)
class CheckpointConfig:
    """Resumable training state under ``RUN/checkpoints/`` (``r1lab rl RECIPE --resume``)."""

    every_steps: int = 10  # 0 = only at the end of the run
    keep_last: int = 2  # complete checkpoints kept (older ones are deleted)


@dataclass(frozen=True)
class LoggingConfig:
    """metrics.jsonl is always written; these add TensorBoard event files and W&B."""

    tensorboard: bool = False  # RUN/tensorboard/ (needs the tensorboard package)
    wandb: bool = False  # needs pip install 'r1lab[wandb]'; WANDB_MODE=offline works offline
    wandb_project: str = "r1lab"


@constrained(timeout_s=count())
@dataclass(frozen=True)
class DistConfig:
    """Multi-process training under torchrun (single-process runs ignore it)."""

    fsdp: bool = False  # FSDP2 (fully_shard) instead of DDP
    backend: str = "auto"  # auto = nccl with GPUs, else gloo
    timeout_s: int = 1800  # a collective waiting longer than this fails instead of hanging


@constrained(
    k=count(),
    temperature=at_least(0),
    top_p=within(0, 1, low_open=True),
    max_new_tokens=count(),
    every=count(0),
)
@dataclass(frozen=True)
class EvalConfig:
    k: int = 8
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 64
    format_reward: str = "format"
    every: int = 0  # RL: held-out evaluation every N steps (metrics heldout_*); 0 = none


def _default_rewards() -> tuple[RewardComponent, ...]:
    return (RewardComponent("accuracy", 1.0), RewardComponent("format", 0.5))


@constrained(threads=count(0))
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
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    rewards: tuple[RewardComponent, ...] = field(default_factory=_default_rewards)
    eval: EvalConfig = field(default_factory=EvalConfig)
    doctor: DoctorConfig = field(default_factory=DoctorConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    dist: DistConfig = field(default_factory=DistConfig)
