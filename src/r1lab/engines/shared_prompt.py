"""Teacher-forced hidden states with each distinct prompt run once (the G samples of a group
share it): fewer FLOPs, the same values and gradients.

A GRPO batch holds G completions of every prompt. A prompt position never attends to the
completion after it, so its hidden states and K/V are the same in all G rows. This runs the U
distinct prompts once (left-padded, ``use_cache=True``), copies their K/V to the B rows
(`Cache.batch_select_indices`, differentiable), then runs only the completion tokens on top.
Gradients from all G rows flow back into the one prompt pass, summed, exactly as they would be
summed over G separate copies. The prompt share of the forward/backward FLOPs is saved
(6 of 38 tokens in the CPU benchmark).

Used by `completion_logprobs` when some prompt repeats, the decoder is a `transformers` model and
gradient checkpointing is off (HF's checkpointing drops caches in training).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch


def cache_kwarg(module) -> str:
    """The forward's name for the KV cache argument: ``cache`` in newer `transformers`,
    ``past_key_values`` before (and for wrappers that only take ``**kwargs``)."""
    forward = getattr(module, "forward", None)
    if forward is None:
        return "past_key_values"
    try:
        params = inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def prompt_groups(prompt_ids: Sequence[Sequence[int]]) -> tuple[list[list[int]], list[int]]:
    """(distinct prompts in first-seen order, index of each row's prompt among them)."""
    index: dict[tuple[int, ...], int] = {}
    uniq: list[list[int]] = []
    rows = []
    for p in prompt_ids:
        key = tuple(p)
        if key not in index:
            index[key] = len(uniq)
            uniq.append(list(p))
        rows.append(index[key])
    return uniq, rows


def shared_prompt_hidden(
    decoder,
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    *,
    pad_id: int,
    T: int,
    device,
) -> torch.Tensor:
    """Last hidden states at the positions that predict completion tokens 0..T-1.

    Row b's state t is the decoder's output at its position ``len(prompt_b) + t - 1`` (state 0 is
    the prompt's last position), the same tensor a full right-padded forward gives, there.

    Shapes: B rows; returns hidden_BTH (B, T, H)
    """
    uniq, rows = prompt_groups(prompt_ids)
    U, B, P = len(uniq), len(prompt_ids), max(len(p) for p in uniq)
    ids_UP = torch.full((U, P), pad_id, dtype=torch.long)
    attn_UP = torch.zeros((U, P), dtype=torch.long)
    for u, p in enumerate(uniq):
        ids_UP[u, P - len(p) :] = torch.tensor(p, dtype=torch.long)
        attn_UP[u, P - len(p) :] = 1
    ids_UP, attn_UP = ids_UP.to(device), attn_UP.to(device)
    expand_B = torch.tensor(rows, dtype=torch.long, device=device)
    out = decoder(
        input_ids=ids_UP,
        attention_mask=attn_UP,
        position_ids=(attn_UP.cumsum(-1) - 1).clamp(min=0),
        use_cache=True,
    )
    first_BH = out[0][:, -1].index_select(0, expand_B)
    if T == 1:
        return first_BH.unsqueeze(1)
    # transformers 5 renamed it; .get would read (and warn about) the old name eagerly
    cache = out["cache"] if "cache" in out else out.past_key_values  # noqa: SIM401
    cache.batch_select_indices(expand_B)
    # completion tokens 0..T-2 are the inputs (the last one predicts nothing)
    ids_BC = torch.full((B, T - 1), pad_id, dtype=torch.long)
    attn_BC = torch.zeros((B, T - 1), dtype=torch.long)
    for b, c in enumerate(completion_ids):
        n = min(len(c), T - 1)
        if n:
            ids_BC[b, :n] = torch.tensor(c[:n], dtype=torch.long)
            attn_BC[b, :n] = 1
    ids_BC, attn_BC = ids_BC.to(device), attn_BC.to(device)
    plen_B = torch.tensor([len(p) for p in prompt_ids], dtype=torch.long, device=device)
    pos_BC = plen_B.unsqueeze(1) + torch.arange(T - 1, device=device).unsqueeze(0)
    rest = decoder(
        input_ids=ids_BC,
        attention_mask=torch.cat([attn_UP.index_select(0, expand_B), attn_BC], dim=1),
        position_ids=pos_BC,
        use_cache=True,
        **{cache_kwarg(decoder): cache},
    )[0]
    return torch.cat([first_BH.unsqueeze(1), rest], dim=1)
