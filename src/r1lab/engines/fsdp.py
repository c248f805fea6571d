"""Multi-process learner under ``torchrun``: DDP, or FSDP2 for models that do not fit one device.

`training_model` wraps a model for the process group; `hf_learner.Learner` trains the wrapped
module and calls the full-state helpers below for its checkpoints. What makes N processes equal
to one process on the global batch (tests/distributed/test_equivalence.py):

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
being trained. DDP reduces after every micro-batch's backward (the Learner's micro-batch loop has
no ``no_sync``): more communication than needed, the same result. FSDP2
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


def full_model_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Full (unsharded) CPU state dict of the trained model (collective under FSDP2)."""
    model = _unwrap(module)
    if is_sharded(model):
        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_model_state_dict(model, options=opts)
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def full_optimizer_state(module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    model = _unwrap(module)
    if is_sharded(model):
        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_optimizer_state_dict(model, optimizer, options=opts)
    return optimizer.state_dict()


def load_full_state(module, optimizer, model_state: dict, optimizer_state: dict) -> None:
    """The inverse of `full_model_state` / `full_optimizer_state` (every rank calls it)."""
    model = _unwrap(module)
    if is_sharded(model):
        opts = StateDictOptions(full_state_dict=True)
        set_model_state_dict(model, model_state, options=opts)
        set_optimizer_state_dict(model, optimizer, optimizer_state, options=opts)
    else:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)


def sync_rollout_weights(module: torch.nn.Module, rollout_model: torch.nn.Module) -> None:
    """FSDP2: copy the full trained weights into the rollout model (collective)."""
    full = get_model_state_dict(_unwrap(module), options=StateDictOptions(full_state_dict=True))
    rollout_model.load_state_dict(full)
