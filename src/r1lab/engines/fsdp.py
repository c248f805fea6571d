"""Multi-process learner under ``torchrun``: DDP, or FSDP2 for models that do not fit one device.

Composition, not a new trainer: `training_model` wraps the policy for the process group and
`DistributedLearner` wraps the single-process `HFLearner` (which keeps its micro-batching, grad
clipping and non-finite skipping). What makes N processes equal to one process on the global
batch (tests/distributed/test_equivalence.py):

1. the loss normalizers (sequences and tokens with a non-empty mask) are SUMMED over ranks before
   any loss is computed, and every rank's micro-batch losses use those global counts;
2. each rank's loss is its share of the global-batch loss, so the global gradient is the SUM of
   the ranks' gradients; DDP and FSDP2 average over ranks, so the loss handed to backward is
   scaled by the world size (a sum all-reduce hook would be wrong for DDP: without ``no_sync`` it
   re-reduces the gradient already accumulated from earlier micro-batches, which a mean leaves
   unchanged but a sum multiplies);
3. clipping then sees the global gradient norm, identical on every rank, so every rank takes the
   same optimizer step (or skips it together when the gradient is not finite).

DDP shares its parameters with the plain model, so the rollout generator samples from the policy
being trained. DDP reduces after every micro-batch's backward (HFLearner owns the micro-batch loop,
so there is no ``no_sync``): more communication than needed, the same result. FSDP2
(`torch.distributed.fsdp.fully_shard`, one shard group per decoder layer plus the root) trains a
sharded copy; the plain model stays the rollout copy and `sync_rollout_weights` refreshes it from
the shards after each update (a full copy per rank for generation: what a vLLM engine would hold).
Both wrappers hide the LM head from `completion_logprobs`, which then computes full logits through
the wrapped forward (the chunked-head shortcut would bypass the wrapper's hooks).
"""

from __future__ import annotations

import copy

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.nn.parallel import DistributedDataParallel

from r1lab.engines.hf_learner import HFLearner, LossFn, TrainBatch
from r1lab.errors import ConfigError
from r1lab.utils import dist as rdist


class FullLogits(torch.nn.Module):
    """Forwards to the sharded model; has no ``config``/LM-head attributes, so callers go through
    ``forward`` (and FSDP's unshard hooks) instead of reaching into the head's weight."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args, **kwargs):
        return self.inner(*args, **kwargs)


def _decoder_layers(model) -> list[torch.nn.Module]:
    base = getattr(model, "base_model", model)
    base = getattr(base, "model", base)  # PEFT: PeftModel.base_model.model is the HF model
    layers = getattr(getattr(base, "model", base), "layers", None)
    return list(layers) if layers is not None else []


def training_model(model: torch.nn.Module, *, fsdp: bool = False) -> torch.nn.Module:
    """The module to optimize in this process group; `model` itself when single-process."""
    if rdist.world_size() == 1:
        return model
    if not fsdp:
        return DistributedDataParallel(model)  # broadcasts rank 0's weights to every rank
    sharded = copy.deepcopy(model).train()
    for layer in _decoder_layers(sharded):
        fully_shard(layer)
    fully_shard(sharded)
    return FullLogits(sharded)


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    if isinstance(module, DistributedDataParallel):
        return module.module
    if isinstance(module, FullLogits):
        return module.inner
    return module


def is_sharded(module: torch.nn.Module) -> bool:
    return isinstance(_unwrap(module), FSDPModule)


class DistributedLearner:
    """`HFLearner` over a process group: global normalizers, summed gradients, reduced metrics.

    In a single process it is the plain `HFLearner` (every collective is then the identity)."""

    def __init__(self, learner: HFLearner, rollout_model: torch.nn.Module) -> None:
        if rdist.world_size() > 1 and getattr(learner, "micro_batch_tokens", 0):
            raise ConfigError(
                "token-budget micro-batches (grpo.micro_batch_tokens) give ranks different "
                "numbers of backward passes, which deadlocks DDP/FSDP; set it to 0 under torchrun"
            )
        self.learner = learner
        self.rollout_model = rollout_model

    @property
    def skipped_steps(self) -> int:
        return self.learner.skipped_steps

    @skipped_steps.setter
    def skipped_steps(self, n: int) -> None:
        self.learner.skipped_steps = n

    def logprobs(self, model, batch: TrainBatch) -> torch.Tensor:
        return self.learner.logprobs(model, batch)

    def score(self, batch: TrainBatch, *models) -> list[torch.Tensor | None]:
        return self.learner.score(batch, *models)  # local rows, no collective

    def update(self, batch: TrainBatch, loss_fn: LossFn) -> dict[str, float]:
        """One optimizer step on the global batch (this rank holds its rows of it)."""
        m = batch.mask_BT.detach().float()
        seqs, tokens = rdist.all_sum([float((m.sum(-1) > 0).sum()), float(m.sum())])
        num_seqs, num_tokens = max(1.0, seqs), max(1.0, tokens)  # = batch_normalizers(global)

        world = rdist.world_size()

        def global_loss(logp, mb, *, entropy_BT, **_local_normalizers):
            loss, metrics = loss_fn(
                logp, mb, entropy_BT=entropy_BT, num_seqs=num_seqs, num_tokens=num_tokens
            )
            return loss * world, metrics  # DDP/FSDP2 average gradients over ranks

        out = self.learner.update(batch, global_loss)
        out["loss"] /= world  # this rank's share of the global loss; summed over ranks below
        out = rdist.reduce_rows(out, weight=float(m.sum()))  # token-weighted means over ranks
        if is_sharded(self.learner.model):
            self.sync_rollout_weights()
        return out

    def sync_rollout_weights(self) -> None:
        """FSDP2: copy the full trained weights into the rollout model (collective)."""
        full = get_model_state_dict(
            _unwrap(self.learner.model), options=StateDictOptions(full_state_dict=True)
        )
        self.rollout_model.load_state_dict(full)

    # ---- checkpoint state (collectives: every rank calls them) ----
    def model_state(self) -> dict[str, torch.Tensor]:
        """Full (unsharded) CPU state dict of the trained model; complete on rank 0."""
        model = _unwrap(self.learner.model)
        if is_sharded(model):
            opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
            return get_model_state_dict(model, options=opts)
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        model = _unwrap(self.learner.model)
        if is_sharded(model):
            set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))
            self.sync_rollout_weights()
        else:
            model.load_state_dict(state)

    def optimizer_state(self) -> dict:
        model = _unwrap(self.learner.model)
        if is_sharded(model):
            opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
            return get_optimizer_state_dict(model, self.learner.optimizer, options=opts)
        return self.learner.optimizer.state_dict()

    def load_optimizer_state(self, state: dict) -> None:
        model = _unwrap(self.learner.model)
        if is_sharded(model):
            opts = StateDictOptions(full_state_dict=True)
            set_optimizer_state_dict(model, self.learner.optimizer, state, options=opts)
        else:
            self.learner.optimizer.load_state_dict(state)
