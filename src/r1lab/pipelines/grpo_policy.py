"""The policy side of a GRPO run, built once: the trained model (LoRA adapters or full weights),
the frozen KL reference, the rollout engine and the learner (one process, DDP or FSDP2).

`build_policy` makes the choices a recipe selects - `lora.enabled`, `rollout.engine`, `dist.fsdp`,
`grpo.beta` / `grpo.adv_params.beta` - so the step in `pipelines/rl_step.py` reads the same for all
of them. The learning-rate schedule is stepped by the step, once per RL step (not per optimizer
step of its mini-batches), so the learner gets none. The reference
is a deep copy of the starting weights, or with LoRA the same model with its adapters disabled
(no second copy). A colocated vLLM engine sleeps during the update and is given the new weights
after it (`before_update` / `after_update`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from r1lab.engines.generators import build_generator
from r1lab.engines.hf_learner import Learner
from r1lab.engines.vllm import colocated_device
from r1lab.models.lora import (
    AdapterDisabledReference,
    apply_lora,
    merged_state_dict,
    save_lora_run,
)
from r1lab.pipelines.rl_config import RLConfig
from r1lab.pipelines.rl_step import kl_in_reward


def make_optimizer(model, g) -> tuple[torch.optim.Optimizer, object]:
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=g.lr, weight_decay=g.weight_decay
    )
    warm = max(1, g.warmup_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / warm))
    return opt, sched


@dataclass
class Policy:
    model: Any  # the trained module the engines sample from (LoRA: adapters injected)
    tokenizer: Any
    ref: Any  # None without a KL (grpo.beta == 0 and no KL in the reward)
    generator: Any  # from engines/generators.py: HFGenerator | VLLMGenerator
    learner: Learner
    sched: Any
    lora_model: Any = None  # the PeftModel when lora.enabled
    colocated: bool = False  # a vLLM engine on the learner's GPU

    def weights(self) -> dict[str, torch.Tensor]:
        """The policy's tensors under plain Hugging Face names (LoRA: adapters merged)."""
        if self.lora_model is not None:
            return merged_state_dict(self.lora_model)
        return self.model.state_dict()

    def before_update(self) -> None:
        if self.colocated:
            self.generator.sleep()

    def after_update(self) -> None:
        if self.colocated:
            self.generator.sync_weights(self.weights())

    def save(self, ckpt: Path) -> None:
        """A plain HF directory; LoRA: adapters merged, plus the adapter alone in ckpt/adapter/."""
        if self.lora_model is not None:
            save_lora_run(self.lora_model, self.tokenizer, ckpt)
        else:
            self.model.save_pretrained(ckpt)
            self.tokenizer.save_pretrained(ckpt)


def build_policy(cfg: RLConfig, model, tokenizer, run_dir: Path) -> Policy:
    g = cfg.grpo
    lora_model = None
    if cfg.lora.enabled:  # adapters train, base frozen; `model` is the adapter-injected policy
        lc = cfg.lora
        lora_model = apply_lora(
            model, r=lc.r, alpha=lc.alpha, dropout=lc.dropout, target_modules=lc.target_modules
        )
        model = lora_model.get_base_model()
    colocated = cfg.rollout.engine == "vllm"
    if colocated:  # the learner trains on the GPU vLLM samples on
        model.to(colocated_device())
    ref = None
    if g.beta > 0 or kl_in_reward(g):  # else no reference model; LoRA: the base, adapters off
        ref = (
            AdapterDisabledReference(lora_model)
            if lora_model is not None
            else copy.deepcopy(model).eval().requires_grad_(False)
        )
    policy = Policy(model, tokenizer, ref, None, None, None, lora_model, colocated)
    policy.generator = build_generator(
        cfg.rollout,
        model=model,
        tokenizer=tokenizer,
        batch_size=cfg.sampling.batch_size,
        weights=policy.weights() if colocated else None,
        workdir=run_dir / "vllm_engine",
        seed=cfg.seed,
    )
    policy.learner = Learner(
        model,
        lambda train_model: make_optimizer(train_model, g),
        fsdp=cfg.dist.fsdp,
        pad_id=policy.generator.pad_id,
        micro_batch_size=g.micro_batch_size,
        micro_batch_tokens=g.micro_batch_tokens,
        gradient_checkpointing=g.gradient_checkpointing,
        max_grad_norm=g.max_grad_norm,
        temperature=cfg.sampling.temperature,
    )
    policy.sched = policy.learner.scheduler  # follows RL steps: rl_step steps it
    return policy
