"""Worker bodies for the multi-process tests (importable by spawned children, not collected)."""

from __future__ import annotations

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from r1lab.algo import policy_objective
from r1lab.engines.hf_learner import Learner, TrainBatch, padded

B, VOCAB = 8, 40
AGGS = ("seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm")


def tiny_qwen2(seed: int = 0):
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=False,
    )
    return Qwen2ForCausalLM(cfg)


def global_batch() -> TrainBatch:
    """B rollouts of varied prompt/completion lengths; row 5 has an empty completion (it must
    not count in num_seqs on its rank)."""
    g = torch.Generator().manual_seed(1)
    lens = [5, 2, 7, 3, 4, 0, 6, 1]
    prompts = [torch.randint(0, VOCAB, (3 + b % 3,), generator=g).tolist() for b in range(B)]
    comps = [torch.randint(0, VOCAB, (n,), generator=g).tolist() for n in lens]
    T = max(lens)
    mask = padded([[1.0] * n for n in lens], T)
    old = -torch.rand(B, T, generator=g) * 3 * mask
    adv = torch.randn(B, 1, generator=g).expand(B, T).clone()
    ref = -torch.rand(B, T, generator=g) * 3 * mask
    return TrainBatch(prompts, comps, mask, old, adv, ref)


def loss_fn_for(agg: str):
    def loss_fn(logp, mb, *, entropy_BT, num_seqs, num_tokens):
        return policy_objective(
            logp,
            mb.old_logp_BT,
            mb.ref_logp_BT,
            mb.adv_BT,
            mb.mask_BT,
            agg=agg,
            beta=0.04,
            num_seqs=num_seqs,
            num_tokens=num_tokens,
            const_len=8,
            entropy_BT=entropy_BT,
        )

    return loss_fn


def plain_learner(model, fsdp: bool = False) -> Learner:
    """One SGD(lr=1) step = params - grad, no clipping."""

    def sgd(module):
        return torch.optim.SGD(module.parameters(), lr=1.0), None

    return Learner(model, sgd, fsdp=fsdp, micro_batch_size=3, max_grad_norm=1e6)


def single_process_reference() -> dict:
    torch.set_num_threads(1)
    out = {}
    for agg in AGGS:
        model = tiny_qwen2()
        learner = plain_learner(model)
        metrics = learner.update(global_batch(), loss_fn_for(agg))
        out[agg] = (metrics, {k: v.detach().clone() for k, v in model.state_dict().items()})
    return out


def equivalence_worker(rank: int, world: int, store: str, out_path: str) -> None:
    """Each mode (DDP, FSDP2) and aggregation: one update on this rank's half of the batch."""
    import torch.distributed as dist

    from r1lab.utils import dist as rdist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        share = rdist.shard_slice(B, "batch rows")
        local = global_batch().rows(share.start, share.stop)
        out: dict = {"ddp": {}, "fsdp2": {}}
        for mode, agg in [(m, a) for m in out for a in AGGS]:
            model = tiny_qwen2()
            learner = plain_learner(model, fsdp=mode == "fsdp2")
            metrics = learner.update(local, loss_fn_for(agg))
            state = learner.state()["model"]
            rollout = {k: v.detach().clone() for k, v in model.state_dict().items()}
            out[mode][agg] = (metrics, state, rollout)
        if rank == 0:
            torch.save(out, out_path)
    finally:
        rdist.shutdown(completed=False)  # destroy, then let gloo's workers finish (no SIGABRT)


def rank_failure_worker(rank: int, world: int, store: str, out_dir: str, model_dir: str) -> None:
    """A reward that fails on rank 1 only: every rank must stop (none waits in a collective)."""
    import datetime
    from pathlib import Path

    import torch.distributed as dist

    from r1lab.config import load_config
    from r1lab.pipelines import grpo
    from r1lab.pipelines.rl_config import RLConfig
    from r1lab.rewards import REWARDS, RewardResult
    from r1lab.utils import dist as rdist

    if "fails_on_rank1" not in REWARDS:

        @REWARDS.register("fails_on_rank1")
        def fails_on_rank1(c, **_):
            if dist.get_rank() == 1:
                raise RuntimeError("verifier crashed")
            return RewardResult(float(len(c.text) % 2))

    torch.set_num_threads(1)
    timeout = datetime.timedelta(seconds=60)
    dist.init_process_group(
        "gloo", init_method=f"file://{store}", rank=rank, world_size=world, timeout=timeout
    )
    cfg = load_config(
        RLConfig,
        "r1_zero_tiny",
        [
            f"model.path={model_dir}",
            f"output_dir={out_dir}",
            "run_name=fail",
            "grpo.steps=3",
            "grpo.prompts_per_step=2",
            "grpo.mini_batches=1",  # one group per rank
            "grpo.group_size=2",
            "data.n_train=8",
            "data.template=chat",
            "sampling.max_new_tokens=4",
            "progress=false",
            "rewards=[{name: fails_on_rank1}]",
        ],
    )
    try:
        grpo.run(cfg, log=lambda *_: None)
        result = "finished"
    except Exception as exc:  # noqa: BLE001 - the test reads what each rank raised
        result = f"{type(exc).__name__}: {exc}"
    finally:
        rdist.shutdown(completed=False)  # destroy, then let gloo's workers finish (no SIGABRT)
    Path(out_dir, f"rank{rank}.txt").write_text(result)


def sft_config(model_dir: str, data: str, out: str, name: str, fsdp: bool = False):
    """One epoch of SFT; on 22 rows its steps hold 6, 6, 6 and 1 samples (rank 1 gets none)."""
    from r1lab.pipelines.rl_config import DistConfig, ModelConfig
    from r1lab.pipelines.sft_config import SFTConfig, SFTDataConfig, SFTTrainConfig

    return SFTConfig(
        output_dir=out,
        run_name=name,
        progress=False,
        threads=1,
        model=ModelConfig(path=model_dir, device="cpu"),
        data=SFTDataConfig(train_file=data, eval_fraction=0.1),
        train=SFTTrainConfig(epochs=1, batch_tokens=300, lr=5e-3),
        dist=DistConfig(fsdp=fsdp),
    )


def sft_worker(rank: int, world: int, store: str, model_dir: str, data: str, out: str) -> None:
    """`sft.run` on every rank, DDP then FSDP2; rank 0 writes each run's files."""
    import torch.distributed as dist

    from r1lab.pipelines import sft
    from r1lab.utils import dist as rdist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        for mode in ("ddp", "fsdp2"):
            cfg = sft_config(model_dir, data, out, mode, fsdp=mode == "fsdp2")
            sft.run(cfg, log=lambda *_: None)
    finally:
        rdist.shutdown(completed=False)
