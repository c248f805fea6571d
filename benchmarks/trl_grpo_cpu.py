"""TRL 1.16 `GRPOTrainer` on the GRPO CPU reference workload (the baseline of ``grpo_step.py``).

Runs in ``benchmarks/.venv-trl`` (``bash benchmarks/setup_trl.sh``), never in r1lab's venv: TRL is
not a dependency of r1lab. The work is ``docs/grpo_cpu_workload.md``: tiny random Qwen2,
character tokenizer, 8 addition prompts x 8 samples per step, fixed-length completions (the
``<eos>`` logit is -inf for all L tokens through ``min_new_tokens = max_new_tokens = L``),
``loss_type="dapo"``, beta 0.04 with a reference model, fused AdamW at lr 1e-4, clip 1.0, no
gradient checkpointing, float32, 2 warm-up + 10 timed steps.

Timing hooks, all outside TRL's code: a `TrainerCallback` whose ``on_step_end`` marks each
optimizer step's end; the model's ``generate`` and the trainer's
``_generate_and_score_completions`` wrapped with timers (generation call; rollout = generation +
decode + rewards + advantages + reference forward).

Run: ``benchmarks/.venv-trl/bin/python benchmarks/trl_grpo_cpu.py [--config large] [--workdir D]``.
The last line of the output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import functools
import logging
import time
import warnings
from pathlib import Path

import grpo_workload as wl
import torch
from phase_timer import PhaseTimer


def timed(fn, sink: list[float]):
    @functools.wraps(fn)
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            sink.append(time.perf_counter() - t)

    return wrapper


def run(args: argparse.Namespace, workdir: Path) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    model_dir = wl.init_model_dir(args, workdir)
    tokenizer = wl.load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    rows = wl.prompts_for_run(args)
    dataset = Dataset.from_dict({"prompt": [p for p, _ in rows], "answer": [a for _, a in rows]})

    def reward_correct(completions, answer, **_):
        return [wl.reward_correct(c, a) for c, a in zip(completions, answer)]

    def reward_digit_first(completions, **_):
        return [wl.reward_digit_first(c) for c in completions]

    L = args.max_completion_length
    B = args.prompts_per_step * args.num_generations
    config = GRPOConfig(
        output_dir=str(workdir / "trl_out"),
        use_cpu=True,
        bf16=False,
        fp16=False,
        seed=args.seed,
        max_steps=args.warmup_steps + args.steps,
        per_device_train_batch_size=B,
        gradient_accumulation_steps=1,
        num_generations=args.num_generations,
        num_iterations=1,
        max_completion_length=L,
        generation_kwargs={"min_new_tokens": L} if args.fixed_length else None,
        temperature=args.temperature,
        top_p=1.0,
        top_k=0,
        min_p=None,
        repetition_penalty=1.0,
        shuffle_dataset=False,
        beta=args.beta,
        epsilon=0.2,
        loss_type="dapo",
        scale_rewards="group",
        reward_weights=[1.0, 1.0],
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        optim="adamw_torch_fused",
        max_grad_norm=1.0,
        gradient_checkpointing=args.gradient_checkpointing,
        logging_steps=10_000,
        save_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=True,
        log_completions=False,
    )
    clock = wl.StepClock(args.warmup_steps)
    timer = PhaseTimer() if args.phases else None

    class StepEnd(TrainerCallback):
        def on_train_begin(self, *a, **k):
            clock.ends[0] = time.perf_counter()
            clock.cpu_ends[0] = time.process_time()
            clock.stat_ends[0] = wl._proc_stat()

        def on_step_end(self, *a, **k):
            clock.step_end()
            if timer is not None:
                timer.step_end()

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward_correct, reward_digit_first],
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[StepEnd()],
    )
    trainer.model.generate = timed(trainer.model.generate, clock.generate_s)
    trainer._generate_and_score_completions = timed(
        trainer._generate_and_score_completions, clock.rollout_s
    )
    if timer is not None:
        ref = trainer.ref_model
        timer.install(trainer.model.model, None if ref is None else ref.model)
    clock.rss_before_mib = wl.resource.getrusage(wl.resource.RUSAGE_SELF).ru_maxrss / 1024
    trainer.train()
    figures = clock.figures(gen_tokens_per_step=B * L)
    if timer is not None:
        figures |= timer.medians(clock.step_times(), clock.generate_s, args.warmup_steps)
    return {
        "impl": "trl",
        "trl_version": __import__("trl").__version__,
        "torch_version": torch.__version__,
        "config": args.config,
        "gradient_checkpointing": args.gradient_checkpointing,
        "steps_timed": args.steps,
        **figures,
    }


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    wl.main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
