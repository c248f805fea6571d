"""Token-budget batches for SFT: padding-free packing (default) or padded rows, same batches.

Packing puts the samples of a batch end to end in ONE row and restarts ``position_ids`` at 0 for
every sample, with no 2D attention mask. `transformers` reads that layout as packed sequences: it
builds a block-diagonal causal mask (eager/SDPA, `masking_utils.find_packed_sequence_indices`) or
runs variable-length flash attention, so attention never crosses a sample boundary, and RoPE sees
each sample's own positions. tests/pipelines/test_sft_packing.py checks that a packed batch gives
the same per-sample losses as the same samples padded.

Targets are aligned to logit positions: logits at t predict token t+1, so ``mask[t]`` is the loss
mask of token t+1. A sample's first token is never a target, so no loss term crosses a boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import torch

from r1lab.algo import token_logprobs
from r1lab.data.chat import SFTSample
from r1lab.errors import ConfigError


def plan_batches(lengths: Sequence[int], order: Sequence[int], budget: int) -> list[list[int]]:
    """Consecutive samples of ``order`` grouped so each group holds at most ``budget`` tokens
    (a sample longer than the budget gets a group of its own)."""
    if budget < 1:
        raise ConfigError(f"sft.batch_tokens must be >= 1, got {budget}")
    batches: list[list[int]] = []
    cur: list[int] = []
    used = 0
    for i in order:
        if cur and used + lengths[i] > budget:
            batches.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += lengths[i]
    if cur:
        batches.append(cur)
    return batches


@dataclass
class SFTBatch:
    """R rows of length L (R = 1 when packed).

    Shapes: input_ids, position_ids, targets, seq_id: (R, L) long; mask: (R, L) float;
    attention_mask: (R, L) long or None (packed). ``seq_id[r, t]`` is the index (within the
    batch) of the sample whose token t+1 is the target at (r, t), -1 where there is none.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor | None
    targets: torch.Tensor
    mask: torch.Tensor
    seq_id: torch.Tensor
    num_samples: int

    @property
    def num_targets(self) -> int:
        return int(self.mask.sum())

    # ---- what `Learner.update` reads (engines/hf_learner.py) ----
    @property
    def mask_BT(self) -> torch.Tensor:
        return self.mask

    def micro_batches(self, learner) -> list[SFTBatch]:
        return [self]  # the token budget already sized the batch

    def to(self, device) -> SFTBatch:
        tensors = (f.name for f in fields(self) if isinstance(getattr(self, f.name), torch.Tensor))
        return replace(self, **{n: getattr(self, n).to(device) for n in tensors})

    def forward(self, model, learner) -> tuple[torch.Tensor, dict]:
        return target_logprobs(model, self), {}


def _shifted(ids: list[int], loss: list[int], k: int) -> tuple[list[int], list[float], list[int]]:
    targets = ids[1:] + [0]
    mask = [float(m) for m in loss[1:]] + [0.0]
    return targets, mask, [k if m else -1 for m in mask]


def collate_packed(samples: Sequence[SFTSample]) -> SFTBatch:
    ids, pos, tgt, mask, sid = [], [], [], [], []
    for k, s in enumerate(samples):
        t, m, q = _shifted(s.input_ids, s.loss_mask, k)
        ids += s.input_ids
        pos += list(range(len(s.input_ids)))
        tgt, mask, sid = tgt + t, mask + m, sid + q
    as_row = lambda x, dt: torch.tensor([x], dtype=dt)  # noqa: E731
    return SFTBatch(
        input_ids=as_row(ids, torch.long),
        position_ids=as_row(pos, torch.long),
        attention_mask=None,
        targets=as_row(tgt, torch.long),
        mask=as_row(mask, torch.float32),
        seq_id=as_row(sid, torch.long),
        num_samples=len(samples),
    )


def collate_padded(samples: Sequence[SFTSample], pad_id: int) -> SFTBatch:
    R, L = len(samples), max(len(s.input_ids) for s in samples)
    input_ids = torch.full((R, L), pad_id, dtype=torch.long)
    attn = torch.zeros((R, L), dtype=torch.long)
    targets = torch.zeros((R, L), dtype=torch.long)
    mask = torch.zeros((R, L), dtype=torch.float32)
    seq_id = torch.full((R, L), -1, dtype=torch.long)
    for k, s in enumerate(samples):
        n = len(s.input_ids)
        t, m, q = _shifted(s.input_ids, s.loss_mask, k)
        input_ids[k, :n] = torch.tensor(s.input_ids)
        attn[k, :n] = 1
        targets[k, :n] = torch.tensor(t)
        mask[k, :n] = torch.tensor(m)
        seq_id[k, :n] = torch.tensor(q)
    pos = torch.arange(L).unsqueeze(0).expand(R, L).contiguous()
    return SFTBatch(input_ids, pos, attn, targets, mask, seq_id, R)


def collate(samples: Sequence[SFTSample], *, packing: bool, pad_id: int) -> SFTBatch:
    return collate_packed(samples) if packing else collate_padded(samples, pad_id)


def target_logprobs(model, batch: SFTBatch) -> torch.Tensor:
    """Log-prob (R, L) of every target under `model` (differentiable under grad)."""
    device = next(model.parameters()).device
    out = model(
        input_ids=batch.input_ids.to(device),
        position_ids=batch.position_ids.to(device),
        attention_mask=None if batch.attention_mask is None else batch.attention_mask.to(device),
        use_cache=False,
    )
    return token_logprobs(out.logits, batch.targets.to(device))
