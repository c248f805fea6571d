"""GRPO-family RL from verifiable rewards (R1-Zero, reasoning RL, all-scenario RL).

The loop, in reading order: sample G completions per prompt with the current policy -> score
them with the rule-based reward spec -> advantages (algo/) -> `mu` policy updates against the
sampling policy's log-probs with the clipped objective and the KL to a frozen reference (algo/) ->
metrics. The formulas live in `r1lab.algo`; this file only wires the pieces.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from r1lab.algo import (
    IS_CORRECTIONS,
    compute_advantages,
    mismatch_metrics,
    overlong_mask,
    policy_objective,
)
from r1lab.config import to_dict
from r1lab.doctor import RunDoctor
from r1lab.engines.hf_learner import TrainBatch, padded
from r1lab.engines.vllm import require_vllm
from r1lab.pipelines.common import (
    load_model,
    make_run_dir,
    prompts_for,
    seed_everything,
    task_examples,
)
from r1lab.pipelines.grpo_policy import build_policy
from r1lab.pipelines.heldout import evaluate_model
from r1lab.pipelines.rl_config import RLConfig
from r1lab.pipelines.rollouts import collect_step
from r1lab.rewards.combine import check_error_rate, check_spec
from r1lab.types import SamplingParams
from r1lab.utils import dist as rdist
from r1lab.utils.checkpoint import RunCheckpoints, resumable_run_dir, set_rng_state
from r1lab.utils.progress import progress_bar
from r1lab.utils.tracking import Tracker


@dataclass
class RLResult:
    run_dir: Path
    checkpoint: Path
    metrics: list[dict]
    wall_seconds: float


def sampling_params(cfg: RLConfig, step: int) -> SamplingParams:
    s = cfg.sampling
    return SamplingParams(
        temperature=s.temperature,
        top_p=s.top_p,
        top_k=s.top_k,
        max_new_tokens=s.max_new_tokens,
        stop=s.stop,
        seed=cfg.seed * 100_003 + step + rdist.rank() * 1_000_000_007,  # ranks: own streams
    )


def run(cfg: RLConfig, **kwargs) -> RLResult:
    """Train; returns an `RLResult`. Under torchrun every rank runs this (DDP, or FSDP2 with
    ``dist.fsdp``): each generates its share of the step's prompt groups, rank 0 writes files."""
    owns_group = rdist.init_from_env(cfg.dist.backend, cfg.dist.timeout_s)
    try:
        result = _run(cfg, **kwargs)
    except BaseException:
        if owns_group:
            rdist.shutdown(completed=False)
        raise
    if owns_group:
        rdist.shutdown()  # every rank finished: they meet in a barrier first (see shutdown)
    return result


def _run(cfg: RLConfig, *, run_dir=None, model=None, tokenizer=None, log=print, resume=None):
    """`model`/`tokenizer` may be passed in (the demo does); `resume`: True or a run directory
    continues from its last complete checkpoint (utils/checkpoint.py)."""
    t_start = time.time()
    log = log if rdist.is_main() else (lambda *_: None)
    g = cfg.grpo
    check_spec(cfg.rewards)
    if cfg.rollout.engine == "vllm":
        require_vllm()  # no vLLM or no GPU: one line, before any model is loaded
    if g.is_correction != "off":
        IS_CORRECTIONS.get(g.is_correction)  # unknown names fail with the known ones
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    train = task_examples(cfg.data, "train")  # bad data fails before any model is loaded
    if resume:
        run_dir = resumable_run_dir(cfg, run_dir or resume)
    if run_dir is None and rdist.is_main():
        run_dir = make_run_dir(cfg.output_dir, cfg.run_name, "rl", cfg)
    run_dir = rdist.broadcast_object(run_dir)
    if model is None:
        model, tokenizer = load_model(
            cfg.model.path,
            pretrain_cfg=cfg.pretrain,
            dtype=cfg.model.dtype,
            device=cfg.model.device,
            log=log,
        )
    policy = build_policy(cfg, model, tokenizer, run_dir)
    learner, generator = policy.learner, policy.generator

    prompts = prompts_for(train, cfg.data.template, tokenizer)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
    cursor = 0
    share = rdist.shard_slice(g.prompts_per_step, "grpo.prompts_per_step")  # this rank's groups

    def next_prompts(n: int) -> list[tuple[str, object]]:
        nonlocal cursor  # counts the prompts of ALL ranks; each rank takes its slice
        idx = [order[(cursor + i) % len(order)] for i in range(share.start, share.stop)]
        cursor += g.prompts_per_step
        return [(prompts[i], train[i]) for i in idx]

    const_len = g.const_len or cfg.sampling.max_new_tokens
    c = cfg.checkpoint
    ckpts = RunCheckpoints(run_dir, c.every_steps, c.keep_last, fresh=not resume)
    ck = ckpts.restore(learner, policy.sched, order=order, total_steps=g.steps) if resume else None
    start, cursor = (ck.steps_done, ck.state["cursor"]) if ck else (0, 0)
    if ck:  # a colocated engine started from the pre-resume weights
        policy.after_update()
    doctor = RunDoctor(cfg.doctor, log=log)
    with (
        Tracker(run_dir, cfg.logging, config=to_dict(cfg), resumed=ck) as tracker,
        progress_bar("rl", g.steps - start, cfg.progress and rdist.is_main()) as advance,
        doctor.recording(run_dir) if rdist.is_main() else nullcontext(),
    ):
        history = rdist.broadcast_object(tracker.rows)  # resume: the rows of the done steps
        for row in history:  # the doctor's state (streaks, counts) is a function of the rows
            doctor.observe(row)
        if ck:
            set_rng_state(ck.state["rng"][rdist.rank()])
        for step in range(start, g.steps):
            t0 = time.time()
            got = rdist.agree(
                lambda step=step: collect_step(
                    generator.generate,
                    next_prompts,
                    cfg.rewards,
                    prompts_per_step=share.stop - share.start,
                    group_size=g.group_size,
                    sampling=lambda rnd, step=step: sampling_params(cfg, step * 1000 + rnd),
                    max_new_tokens=cfg.sampling.max_new_tokens,
                    dynamic_sampling=g.dynamic_sampling,
                    max_gen_rounds=g.max_gen_rounds,
                )
            )
            cursor = max(rdist.gather_objects(cursor))  # dynamic sampling: ranks' rounds differ
            rollouts, completions, table = got.rollouts, got.completions, got.table
            rdist.agree(check_error_rate, table, g.reward_error_threshold, step)
            t_gen = time.time() - t0  # generation + scoring (scoring time: reward/time)

            t2 = time.time()
            batch, truncated = _train_batch(cfg, rollouts, table.total)
            lengths, mask = [len(r.completion_ids) for r in rollouts], batch.mask_BT
            policy.before_update()  # a colocated engine frees the GPU for the update
            mismatch = _is_correction(cfg, policy, batch)
            if policy.ref is not None:
                batch.ref_logp_BT = learner.logprobs(policy.ref, batch)

            def loss_fn(logp, mb, *, entropy_BT, num_seqs, num_tokens):
                return policy_objective(
                    logp,
                    mb.old_logp_BT,
                    mb.ref_logp_BT,
                    mb.adv_BT,
                    mb.mask_BT,
                    loss=g.policy_loss,
                    agg=g.loss_agg,
                    kl=g.kl_estimator,
                    beta=g.beta,
                    eps_low=g.eps_low,
                    eps_high=g.eps_high,
                    num_seqs=num_seqs,
                    num_tokens=num_tokens,
                    const_len=const_len,
                    entropy_BT=entropy_BT,
                    token_weight_BT=mb.is_weight_BT,
                )

            upd: dict[str, float] = {}
            for _ in range(g.mu):
                upd = learner.update(batch, loss_fn)
            policy.after_update()
            t_update = time.time() - t2

            row = {
                "step": step,
                **table.metrics(),
                "accuracy": sum(table.components.get("accuracy", [0.0])) / len(rollouts),
                "format_rate": sum(table.components.get("format", [0.0])) / len(rollouts),
                "response_len_mean": sum(lengths) / len(lengths),
                "response_len_max": max(lengths),
                "truncation_rate": float(truncated.float().mean()),
                "zero_variance_frac": got.zero_variance_frac,
                "empty_response_frac": float((mask.sum(-1) == 0).float().mean()),
                "reward_error_rate": table.error_rate(),
                "gen_rounds": got.rounds,
                "reward_errors": table.num_errors,
                "lr": policy.sched.get_last_lr()[0],
                **upd,
                **{k: float(v) for k, v in mismatch.items()},
                "time/generate": t_gen,
                "time/update": t_update,
                "tokens_per_second": sum(lengths) / max(t_gen, 1e-9),
                "elapsed": time.time() - t_start,
            }
            row = rdist.reduce_rows(row)  # the same row on every rank (so the same doctor verdict)
            if step == 0 and getattr(train, "skipped", 0):  # data.skip_bad_rows
                row["data/skipped_rows"] = train.skipped
            if cfg.eval.every and (step + 1) % cfg.eval.every == 0 and rdist.is_main():
                row |= _heldout(cfg, policy, run_dir, step + 1)
            history.append(row)
            tracker.metric(row)
            tracker.samples(
                {"step": step, "question": c.row["question"], "answer": c.row["answer"]}
                | {"completion": r.text, "reward": total}
                for r, c, total in zip(
                    rollouts[: g.group_size], completions, table.total, strict=False
                )
            )
            doctor.observe(row)  # warns; raises TrainingStopped when training cannot learn
            if ckpts.due(step + 1, g.steps):
                ckpts.save(
                    step + 1,
                    learner,
                    policy.sched,
                    {"cursor": cursor, "order": order, **tracker.state()},
                )
            advance(
                info=f"reward {row['reward']:.2f} acc {row['accuracy']:.2f} "
                f"fmt {row['format_rate']:.2f} len {row['response_len_mean']:.0f}"
            )
    log(doctor.report().summary())
    ckpt = run_dir / "checkpoint"  # plain HF directory; LoRA: adapters merged, + ckpt/adapter/
    if not rdist.is_main():
        return RLResult(run_dir, ckpt, history, time.time() - t_start)
    policy.save(ckpt)
    return RLResult(run_dir, ckpt, history, time.time() - t_start)


def _train_batch(cfg: RLConfig, rollouts, scores: list[float]) -> tuple[TrainBatch, torch.Tensor]:
    """(batch, truncated (B,)) of one step's rollouts: masks, advantages, sampler log-probs."""
    g = cfg.grpo
    T = max(1, max(len(r.completion_ids) for r in rollouts))
    mask = padded([[1.0] * len(r.completion_ids) for r in rollouts], T)
    truncated = torch.tensor([r.truncated for r in rollouts])
    if g.mask_truncated:  # DAPO overlong filtering
        mask = overlong_mask(mask, truncated)
    adv = rdist.on_global_batch(  # batch-wide statistics span every rank
        lambda s, m: compute_advantages(
            g.adv_estimator, s, m, group_size=g.group_size, **g.adv_params
        ),
        torch.tensor(scores, dtype=torch.float32),
        mask,
    )
    batch = TrainBatch(
        prompt_ids=[r.prompt_ids for r in rollouts],
        completion_ids=[r.completion_ids for r in rollouts],
        mask_BT=mask,
        old_logp_BT=padded([r.logprobs for r in rollouts], T),
        adv_BT=adv,
    )
    return batch, truncated


def _is_correction(cfg: RLConfig, policy, batch: TrainBatch) -> dict[str, torch.Tensor]:
    """Sampler/trainer mismatch: with ``grpo.is_correction`` on, the batch's old log-probs become
    the trainer's and its per-token IS weights are set; returns the mismatch metrics."""
    g = cfg.grpo
    if g.is_correction == "off":
        return {}
    policy.model.eval()
    trainer_old = policy.learner.logprobs(policy.model, batch)
    is_w = IS_CORRECTIONS.get(g.is_correction)(
        trainer_old, batch.old_logp_BT, batch.mask_BT, cap=g.is_cap
    )
    mismatch = mismatch_metrics(trainer_old, batch.old_logp_BT, batch.mask_BT, is_w, cap=g.is_cap)
    batch.old_logp_BT, batch.is_weight_BT = trainer_old, is_w
    return mismatch


def _heldout(cfg: RLConfig, policy, run_dir: Path, steps_done: int) -> dict[str, float]:
    """Held-out pass@1, cons@k and format rate of the current policy (``eval.every``)."""
    test = task_examples(cfg.data, "test")
    out = run_dir / "heldout" / f"step-{steps_done:06d}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    m = evaluate_model(cfg, policy.model, policy.tokenizer, test, out, cfg.seed).metrics
    k = cfg.eval.k
    return {
        "heldout_pass@1": m["pass@1"],
        f"heldout_cons@{k}": m[f"cons@{k}"],
        "heldout_format_rate": m["format_rate"],
    }


def with_overrides(cfg: RLConfig, **sections) -> RLConfig:
    return replace(cfg, **sections)
