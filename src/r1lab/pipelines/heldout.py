"""Held-out evaluation of an in-memory policy with the R1 protocol (k samples at the recipe's
``eval`` temperature / top-p), shared by the demo, `compare` and the periodic evaluation inside
the GRPO loop (``eval.every``). The metrics come from `r1lab.eval.runner.evaluate`."""

from __future__ import annotations

from pathlib import Path

from r1lab.engines.generators import build_generator
from r1lab.eval.runner import evaluate
from r1lab.pipelines.common import prompts_for
from r1lab.pipelines.rl_config import RLConfig
from r1lab.types import SamplingParams


def eval_sampling(cfg: RLConfig, seed: int) -> SamplingParams:
    return SamplingParams(
        temperature=cfg.eval.temperature,
        top_p=cfg.eval.top_p,
        max_new_tokens=cfg.eval.max_new_tokens,
        stop=cfg.sampling.stop,
        seed=seed,
    )


def evaluate_model(cfg: RLConfig, model, tokenizer, examples, out_path: Path, seed: int):
    gen = build_generator(model=model, tokenizer=tokenizer, batch_size=cfg.sampling.batch_size)
    return evaluate(
        gen,
        examples,
        prompts=prompts_for(examples, cfg.data.template, tokenizer),
        k=cfg.eval.k,
        sampling=eval_sampling(cfg, seed),
        reward_spec=cfg.rewards,
        format_reward=cfg.eval.format_reward,
        out_path=out_path,
        progress=cfg.progress,
    )
