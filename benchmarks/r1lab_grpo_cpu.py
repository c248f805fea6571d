"""r1lab on the GRPO CPU reference workload: the same step as TRL's `GRPOTrainer` in
``trl_grpo_cpu.py`` (``docs/grpo_cpu_workload.md`` section 5), with r1lab's own machinery.

Per step, in reading order: `HFGenerator.generate` samples 8 prompts x 8 completions of exactly L
tokens (``min_new_tokens = max_new_tokens = L``: the ``<eos>`` logit is -inf) -> the two rewards ->
``compute_advantages("grpo", eps=1e-4)`` -> the RL step's own `rl_step.score_batch` (the frozen
reference's log-probs) -> `Learner.update` with the RL step's `rl_step.objective` (ppo_clip,
eps 0.2, k3 KL at beta 0.04, ``loss_agg="token_mean"`` = TRL's "dapo"), clip 1.0, fused AdamW at a
constant lr.

The old log-probs are r1lab's default (``grpo.old_logprobs=trainer``): with one optimizer step
per batch they are the update forward's own (`rl_step.old_from_update`, ratio exactly 1), the
same shortcut TRL takes, so neither side runs an extra policy forward. One difference in the
math, none in the work: TRL multiplies the KL term by the ratio (``use_bias_correction_kl``),
which changes the KL gradient but not its value or cost; r1lab's objective uses the plain k3
term of DeepSeekMath Eq. 2.

Run: ``.venv/bin/python benchmarks/r1lab_grpo_cpu.py [--config large] [--workdir D]``; the last
line of the output is one JSON object with the same figures as the TRL script.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from types import SimpleNamespace

import grpo_workload as wl
import torch
from phase_timer import PhaseTimer

from r1lab.algo import compute_advantages
from r1lab.engines.hf import HFGenerator
from r1lab.engines.hf_learner import Learner, TrainBatch, padded
from r1lab.pipelines import rl_step
from r1lab.pipelines.rl_config import GRPOConfig
from r1lab.types import SamplingParams


def run(args: argparse.Namespace, workdir: Path) -> dict:
    from transformers import AutoModelForCausalLM

    model_dir = wl.init_model_dir(args, workdir)
    tokenizer = wl.load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ref = copy.deepcopy(model).eval().requires_grad_(False) if args.beta > 0 else None
    rows = wl.prompts_for_run(args)
    G, L = args.num_generations, args.max_completion_length
    B = args.prompts_per_step * G

    generator = HFGenerator(model, tokenizer, batch_size=B)
    opt = torch.optim.AdamW(
        model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=True
    )
    learner = Learner(
        model,
        lambda _: (opt, None),
        pad_id=generator.pad_id,
        micro_batch_size=B,
        max_grad_norm=1.0,
        temperature=args.temperature,
        gradient_checkpointing=args.gradient_checkpointing,
    )

    g = GRPOConfig(
        prompts_per_step=args.prompts_per_step,
        group_size=G,
        loss_agg="token_mean",
        beta=args.beta,
        eps_low=0.2,
        eps_high=0.2,
        kl_estimator="k3",
    )
    policy = SimpleNamespace(model=model, learner=learner, ref=ref)
    loss_fn = rl_step.objective(g, const_len=L)

    timer = PhaseTimer() if args.phases else None
    if timer is not None:
        timer.install(model.model, None if ref is None else ref.model)
    clock = wl.StepClock(args.warmup_steps)
    for step in range(args.warmup_steps + args.steps):
        t0 = time.perf_counter()
        batch_rows = rows[step * args.prompts_per_step : (step + 1) * args.prompts_per_step]
        sampling = SamplingParams(
            temperature=args.temperature,
            max_new_tokens=L,
            min_new_tokens=L if args.fixed_length else 0,
            seed=args.seed * 100_003 + step,
        )
        rollouts = generator.generate([p for p, _ in batch_rows], G, sampling)
        clock.generate_s.append(time.perf_counter() - t0)
        answers = [batch_rows[r.prompt_index][1] for r in rollouts]
        scores = torch.tensor([wl.total_reward(r.text, a) for r, a in zip(rollouts, answers)])
        T = max(1, max(len(r.completion_ids) for r in rollouts))
        mask = padded([[1.0] * len(r.completion_ids) for r in rollouts], T)
        adv = compute_advantages("grpo", scores, mask, group_size=G, eps=1e-4)
        batch = TrainBatch(
            prompt_ids=[r.prompt_ids for r in rollouts],
            completion_ids=[r.completion_ids for r in rollouts],
            mask_BT=mask,
            old_logp_BT=padded([r.logprobs for r in rollouts], T),
            adv_BT=adv,
        )
        rl_step.score_batch(g, policy, batch)
        clock.rollout_s.append(time.perf_counter() - t0)
        learner.update(batch, loss_fn)
        clock.step_end()
        if timer is not None:
            timer.step_end()
    figures = clock.figures(gen_tokens_per_step=B * L)
    if timer is not None:
        figures |= timer.medians(clock.step_times(), clock.generate_s, args.warmup_steps)
    return {
        "impl": "r1lab",
        "torch_version": torch.__version__,
        "config": args.config,
        "gradient_checkpointing": args.gradient_checkpointing,
        "steps_timed": args.steps,
        **figures,
    }


if __name__ == "__main__":
    wl.main(run, __doc__.splitlines()[0])
