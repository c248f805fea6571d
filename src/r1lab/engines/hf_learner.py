"""The `Learner` (`engines.base`) of every training stage (RL, SFT, pretraining, reward model),
one process or under torchrun (DDP, FSDP2: `engines/fsdp.py`), full weights or LoRA adapters.

``update(batch, loss_fn)`` is one optimizer step: the loss normalizers are counted over the WHOLE
batch (summed over ranks), so gradient accumulation over micro-batches and N processes give the
gradient of one big batch; the gradient norm is clipped; a step whose loss or gradient is not
finite is skipped (no parameter change) and reported, never applied. Batches: `TrainBatch` (RL
rollouts, here), `SFTBatch` (SFT, pretraining) and the reward model's `PairBatch`. The caller
steps ``learner.scheduler`` (RL once per RL step, SFT once per update).

Memory: micro-batches hold ``micro_batch_size`` rows, or, with ``micro_batch_tokens > 0``, as many
rows (sorted by length) as fit a budget of padded prompt+completion tokens, so long and short
rollouts cost about the same memory per micro-batch; ``gradient_checkpointing`` recomputes each
decoder layer's activations in the backward pass (HF's, non-reentrant). Log-probs are computed a
chunk of tokens at a time (`completion_logprobs`), so B x T x V logits never exist at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import torch

from r1lab.engines import cpu
from r1lab.engines import fsdp as shard
from r1lab.engines.hf import completion_logprobs
from r1lab.errors import ConfigError
from r1lab.utils import dist as rdist


@dataclass
class TrainBatch:
    """B rollouts ready for the loss. Tensors are (B, T) with T = longest completion."""

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    mask_BT: torch.Tensor
    old_logp_BT: torch.Tensor
    adv_BT: torch.Tensor
    ref_logp_BT: torch.Tensor | None = None
    is_weight_BT: torch.Tensor | None = None  # per-token IS weights (algo.is_correction)

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def select(self, idx: list[int]) -> TrainBatch:
        """The rows ``idx`` (in that order), with T cut to their longest completion."""
        T = max(1, max(len(self.completion_ids[i]) for i in idx))
        at = torch.tensor(idx, dtype=torch.long)
        return replace(
            self,
            prompt_ids=[self.prompt_ids[i] for i in idx],
            completion_ids=[self.completion_ids[i] for i in idx],
            **{
                name: None if t is None else t.index_select(0, at)[:, :T]
                for name, t in self._tensors()
            },
        )

    def rows(self, start: int, end: int) -> TrainBatch:
        """Rows ``start:end`` (a contiguous `select`)."""
        return self.select(list(range(start, min(end, len(self)))))

    def to(self, device: torch.device) -> TrainBatch:
        """The same batch with its tensors on ``device`` (the model's, for the loss)."""
        return replace(
            self, **{name: None if t is None else t.to(device) for name, t in self._tensors()}
        )

    def micro_batches(self, learner: Learner) -> list[TrainBatch]:
        return [self.select(idx) for idx in learner.micro_batch_rows(self)]

    def forward(self, model, learner: Learner) -> tuple[torch.Tensor, dict]:
        """(logp_BT, {"entropy_BT": ...}) of the completions under ``model``, differentiable."""
        logp, _, ent = completion_logprobs(
            model,
            self.prompt_ids,
            self.completion_ids,
            pad_id=learner.pad_id,
            temperature=learner.temperature,
            with_entropy=True,
        )
        return logp, {"entropy_BT": ent}

    def _tensors(self) -> list[tuple[str, torch.Tensor | None]]:
        """Every (B, T) tensor field: a new field added to the dataclass is carried along."""
        return [(f.name, getattr(self, f.name)) for f in fields(self) if f.name.endswith("_BT")]


def padded(rows: list[list[float]], T: int) -> torch.Tensor:
    out = torch.zeros((len(rows), T), dtype=torch.float32)
    for b, r in enumerate(rows):
        if r:
            out[b, : len(r)] = torch.tensor(r, dtype=torch.float32)
    return out


LossFn = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]


def micro_batches(
    prompt_ids: list[list[int]],
    completion_ids: list[list[int]],
    *,
    micro_batch_size: int,
    micro_batch_tokens: int = 0,
) -> list[list[int]]:
    """Row indices of each micro-batch.

    ``micro_batch_tokens == 0``: consecutive runs of ``micro_batch_size`` rows. Otherwise rows are
    sorted by prompt+completion length and packed greedily so that ``rows x longest row`` (the
    padded token count the forward pass sees) stays within the budget; a row longer than the
    budget gets a micro-batch of its own.
    """
    n = len(prompt_ids)
    if micro_batch_tokens <= 0:
        return [list(range(s, min(n, s + micro_batch_size))) for s in range(0, n, micro_batch_size)]
    lengths = [len(p) + len(c) for p, c in zip(prompt_ids, completion_ids)]
    out: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    for i in sorted(range(n), key=lambda i: lengths[i]):
        grown = max(longest, lengths[i])
        if cur and grown * (len(cur) + 1) > micro_batch_tokens:
            out.append(cur)
            cur, grown = [], lengths[i]
        cur.append(i)
        longest = grown
    if cur:
        out.append(cur)
    return out


def shuffled_mini_batches(
    num_rows: int, group_size: int, num: int, generator: torch.Generator
) -> list[list[int]]:
    """Row indices of ``num`` PPO mini-batches of a rollout batch: its groups (``group_size``
    consecutive rows each) in a random order drawn from ``generator``, split into ``num`` runs of
    whole groups whose sizes differ by at most one group. ``num == 1``: the batch in its order.

    Groups stay whole so that each prompt is encoded once per micro-batch (`completion_logprobs`
    shares a repeated prompt's forward). Every rank of a run holds the same number of groups, so
    the split gives every rank the same number of mini-batches of the same sizes.
    """
    if num_rows % group_size:
        raise ValueError(f"{num_rows} rows are not whole groups of {group_size}")
    n_groups = num_rows // group_size
    if not 1 <= num <= n_groups:
        raise ValueError(f"cannot split {n_groups} groups into {num} mini-batches")
    if num == 1:
        return [list(range(num_rows))]
    order = torch.randperm(n_groups, generator=generator)
    return [
        [g * group_size + j for g in part.tolist() for j in range(group_size)]
        for part in torch.tensor_split(order, num)
    ]


def adamw(lr: float, weight_decay: float = 0.0, betas=(0.9, 0.999), schedule=None) -> Callable:
    """A `Learner`'s ``make_optimizer``: AdamW over the parameters that require grad (LoRA: the
    adapters) and ``schedule(optimizer)`` (a torch LR scheduler; None without one)."""

    def make(module):
        params = [p for p in module.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)
        return opt, None if schedule is None else schedule(opt)

    return make


class Learner:
    """Trains ``model`` (wrapped for the process group by `fsdp.training_model`) with the
    optimizer ``make_optimizer(module) -> (optimizer, scheduler or None)`` builds for the module
    it trains. ``rollout_model`` is the plain model (what generators sample and evals read)."""

    def __init__(
        self,
        model,
        make_optimizer: Callable,
        *,
        fsdp: bool = False,
        pad_id: int = 0,
        micro_batch_size: int = 32,
        micro_batch_tokens: int = 0,
        gradient_checkpointing: bool = False,
        max_grad_norm: float = 1.0,
        temperature: float = 1.0,
    ) -> None:
        if rdist.world_size() > 1 and micro_batch_tokens:
            raise ConfigError(
                "token-budget micro-batches (grpo.micro_batch_tokens) give ranks different "
                "numbers of backward passes, which deadlocks DDP/FSDP; set it to 0 under torchrun"
            )
        if gradient_checkpointing:
            if not getattr(model, "supports_gradient_checkpointing", False):
                raise ValueError(f"{type(model).__name__} does not support gradient checkpointing")
            kwargs = {"use_reentrant": False}
            if hasattr(model, "activation_checkpointing_enable"):  # the transformers 5 name
                model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        self.rollout_model = model
        self.model = shard.training_model(model, fsdp=fsdp)  # `model` itself in one process
        self.optimizer, self.scheduler = make_optimizer(self.model)
        self.pad_id = pad_id
        self.micro_batch_size = micro_batch_size
        self.micro_batch_tokens = micro_batch_tokens
        self.max_grad_norm = max_grad_norm
        self.temperature = temperature
        self.skipped_steps = 0

    def micro_batch_rows(self, batch: TrainBatch) -> list[list[int]]:
        return micro_batches(
            batch.prompt_ids,
            batch.completion_ids,
            micro_batch_size=self.micro_batch_size,
            micro_batch_tokens=self.micro_batch_tokens,
        )

    def logprobs(self, model, batch: TrainBatch) -> torch.Tensor:
        """Log-probs (B, T) of the batch's completions under `model` (e.g. the reference)."""
        return self.score(batch, model)[0]

    @torch.no_grad()
    def score(self, batch: TrainBatch, *models) -> list[torch.Tensor | None]:
        """Log-probs (B, T) of this rank's completions under each of `models` (``None`` gives
        ``None``), in one pass over the micro-batches: e.g. the policy's own (the trainer's old
        log-probs) and the frozen reference's, before the first update of a step."""
        T = batch.mask_BT.size(1)
        outs = [None if m is None else torch.zeros_like(batch.mask_BT) for m in models]
        for m in models:
            if m is not None:
                cpu.enable(m)
        for idx in self.micro_batch_rows(batch):
            mb = batch.select(idx)
            for model, out in zip(models, outs):
                if model is None:
                    continue
                logp, _ = completion_logprobs(
                    model,
                    mb.prompt_ids,
                    mb.completion_ids,
                    pad_id=self.pad_id,
                    temperature=self.temperature,
                )
                t = min(T, logp.size(1))
                out[torch.tensor(idx), :t] = logp[:, :t].float().cpu()
        return outs

    def update(self, batch, loss_fn: LossFn) -> dict[str, float]:
        """One optimizer step on the global batch (this rank holds its rows of it)."""
        self.model.train()
        m = batch.mask_BT.detach().float()
        seqs, tokens = rdist.all_sum([float((m.sum(-1) > 0).sum()), float(m.sum())])
        num_seqs, num_tokens = max(1.0, seqs), max(1.0, tokens)  # = batch_normalizers(global)
        world = rdist.world_size()
        sums: dict[str, float] = {}
        loss_total = 0.0
        device = next(self.model.parameters()).device
        for mb in batch.micro_batches(self):
            mb = mb.to(device)  # batches are built on the CPU
            out, extra = mb.forward(self.model, self)
            loss, metrics = loss_fn(out, mb, num_seqs=num_seqs, num_tokens=num_tokens, **extra)
            (loss * world).backward()  # DDP/FSDP2 average gradients over ranks: sum them
            loss_total += float(loss.detach())
            weight = float(mb.mask_BT.sum()) / max(1.0, float(m.sum()))  # of this rank's tokens
            for k, v in metrics.items():
                if k.endswith("_max"):
                    sums[k] = max(sums.get(k, float("-inf")), float(v))
                elif k.endswith("_min"):
                    sums[k] = min(sums.get(k, float("inf")), float(v))
                else:  # token-weighted mean over micro-batches
                    sums[k] = sums.get(k, 0.0) + float(v) * weight
        params = [p for p in self.model.parameters() if p.requires_grad]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm))
        finite = bool(torch.isfinite(torch.tensor([loss_total, grad_norm])).all())
        if finite:
            self.optimizer.step()
        else:
            self.skipped_steps += 1
        self.optimizer.zero_grad(set_to_none=True)
        if shard.is_sharded(self.model):
            shard.sync_rollout_weights(self.model, self.rollout_model)
        row = {"loss": loss_total, "grad_norm": grad_norm, "skipped_nonfinite": float(not finite)}
        return rdist.reduce_rows(row | sums, weight=float(m.sum()))  # token-weighted over ranks

    def state(self) -> dict:
        """Full (unsharded) CPU model and optimizer state and the skipped-step count (collective
        under FSDP2: every rank calls it; complete on rank 0)."""
        return {
            "model": shard.full_model_state(self.model),
            "optimizer": shard.full_optimizer_state(self.model, self.optimizer),
            "skipped_steps": self.skipped_steps,
        }

    def load_state(self, state: dict) -> None:
        shard.load_full_state(self.model, self.optimizer, state["model"], state["optimizer"])
        if shard.is_sharded(self.model):
            shard.sync_rollout_weights(self.model, self.rollout_model)
        self.skipped_steps = state["skipped_steps"]
