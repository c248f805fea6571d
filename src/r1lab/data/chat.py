"""SFT rows (chat messages or prompt/completion pairs) -> token ids with an assistant-only mask.

Rows come from JSONL, Parquet or any `datasets` source (``hf:NAME[:split]``, see `loaders`):

- ``{"messages": [{"role": ..., "content": ...}, ...]}``: rendered with the tokenizer's chat
  template; every assistant turn is a target.
- ``{"prompt": ..., "completion": ...}``: with ``prompt_format="chat"`` the pair becomes a user
  turn (or the prompt's own message list) plus an assistant turn; with ``"raw"`` the prompt is
  already-rendered text (e.g. the R1-Zero template) and the target is the completion plus EOS.

Assistant-only masking works for ANY chat template, with or without ``{% generation %}``
markers: for the i-th assistant message we render the conversation up to the turn before it with
the generation prompt (``P_i``) and up to and including it (``F_i``); the characters
``F_i[len(P_i):]`` are that turn's reply as the template writes it (content plus the template's
end-of-turn text). The full rendering is tokenized once with character offsets, and a token is a
target iff it starts inside one of those spans. A template that rewrites earlier turns (so that a
prefix rendering is not a prefix of the full one) is reported, never silently mis-masked.

Not here: batching/packing (`pipelines.sft_batching`) and the loss.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from r1lab.data.loaders import read_rows
from r1lab.errors import DataError

log = logging.getLogger(__name__)

PromptFormat = Literal["chat", "raw"]
ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class SFTSample:
    """One tokenized training sequence.

    ``loss_mask[t] == 1`` means token t is a target (predicted from tokens < t); ``loss_mask[0]``
    is always 0. Both lists have the same length L.
    """

    input_ids: list[int]
    loss_mask: list[int]
    source: str = ""

    @property
    def num_targets(self) -> int:
        return sum(self.loss_mask)


@dataclass
class LoadStats:
    rows: int = 0
    samples: int = 0
    truncated: int = 0
    dropped_no_target: int = 0
    target_tokens: int = 0
    tokens: int = 0
    sources: dict[str, int] = field(default_factory=dict)


def _check_messages(messages: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(messages, list | tuple) or not messages:
        raise DataError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
    out = []
    for j, m in enumerate(messages):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise DataError(f"{where}: message {j} needs 'role' and 'content', got {m!r}")
        if m["role"] not in ROLES:
            raise DataError(f"{where}: message {j} has role {m['role']!r}; known: {ROLES}")
        if not isinstance(m["content"], str):
            raise DataError(f"{where}: message {j} content must be a string")
        out.append({"role": str(m["role"]), "content": m["content"]})
    if not any(m["role"] == "assistant" for m in out):
        raise DataError(f"{where}: no assistant message, so nothing to train on")
    return out


def row_to_conversation(
    row: Any, where: str, prompt_format: PromptFormat = "chat"
) -> list[dict[str, str]] | tuple[str, str]:
    """A row -> a message list (chat) or a ``(prompt_text, completion_text)`` pair (raw)."""
    if not isinstance(row, Mapping):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if row.get("messages") is not None:
        return _check_messages(list(row["messages"]), where)
    if row.get("prompt") is None or row.get("completion") is None:
        keys = ", ".join(map(str, row))
        raise DataError(f"{where}: an SFT row needs 'messages' or 'prompt'+'completion' ({keys})")
    prompt, completion = row["prompt"], row["completion"]
    if prompt_format == "raw":
        if not isinstance(prompt, str) or not isinstance(completion, str) or not completion:
            raise DataError(f"{where}: raw prompt/completion must be strings (non-empty target)")
        return prompt, completion
    if prompt_format != "chat":
        raise DataError(f"prompt_format must be 'chat' or 'raw', got {prompt_format!r}")
    head = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    tail = (
        [{"role": "assistant", "content": completion}]
        if isinstance(completion, str)
        else list(completion)
    )
    return _check_messages(head + tail, where)


def _render(tokenizer, messages, add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def assistant_spans(tokenizer, messages: Sequence[Mapping[str, str]]) -> tuple[str, list]:
    """The full rendering and the ``[start, end)`` character span of every assistant turn."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise DataError("the tokenizer has no chat template; use prompt_format 'raw' rows")
    full = _render(tokenizer, messages, False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], True) if i else _gen_prompt_only(tokenizer)
        upto = _render(tokenizer, messages[: i + 1], False)
        if not upto.startswith(before) or not full.startswith(upto):
            raise DataError(
                f"the chat template renders assistant turn {i} differently as a prefix than in "
                "the whole conversation (it rewrites earlier turns, e.g. drops their reasoning); "
                "split such conversations into one row per assistant turn"
            )
        if len(upto) > len(before):
            spans.append((len(before), len(upto)))
    return full, spans


def _gen_prompt_only(tokenizer) -> str:
    try:
        return _render(tokenizer, [], True)
    except Exception as exc:  # templates that index messages[0] fail on an empty list
        raise DataError(
            f"the chat template cannot render a conversation that starts with the assistant "
            f"({type(exc).__name__}: {exc}); start it with a user or system message"
        ) from None


def _mask_from_spans(tokenizer, text: str, spans, where: str) -> tuple[list[int], list[int]]:
    if not getattr(tokenizer, "is_fast", False):
        raise DataError(f"{where}: assistant masking needs a fast tokenizer (character offsets)")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
    mask = [int(any(s <= start < e for s, e in spans)) for start, _ in offsets]
    if mask:
        mask[0] = 0  # the first token has no context to be predicted from
    return ids, mask


def tokenize_conversation(
    tokenizer, conv: list[dict[str, str]] | tuple[str, str], where: str = ""
) -> SFTSample:
    """Token ids + assistant-only loss mask of one conversation or raw pair."""
    if isinstance(conv, tuple):
        prompt, completion = conv
        eos = tokenizer.eos_token or ""
        text = prompt + completion + eos
        ids, mask = _mask_from_spans(tokenizer, text, [(len(prompt), len(text))], where)
    else:
        text, spans = assistant_spans(tokenizer, conv)
        ids, mask = _mask_from_spans(tokenizer, text, spans, where)
    return SFTSample(ids, mask, where)


def tokenize_rows(
    rows: Iterable[tuple[str, Any]],
    tokenizer,
    *,
    prompt_format: PromptFormat = "chat",
    max_len: int = 1024,
    stats: LoadStats | None = None,
) -> list[SFTSample]:
    """``(where, row)`` pairs -> samples; too-long samples keep their first ``max_len`` tokens,
    samples left without a target token are dropped (both counted in ``stats``)."""
    stats = stats if stats is not None else LoadStats()
    out = []
    for where, row in rows:
        stats.rows += 1
        sample = tokenize_conversation(
            tokenizer, row_to_conversation(row, where, prompt_format), where
        )
        if len(sample.input_ids) > max_len:
            stats.truncated += 1
            sample = SFTSample(sample.input_ids[:max_len], sample.loss_mask[:max_len], where)
        if sample.num_targets == 0:
            stats.dropped_no_target += 1
            continue
        stats.samples += 1
        stats.target_tokens += sample.num_targets
        stats.tokens += len(sample.input_ids)
        out.append(sample)
    if stats.truncated or stats.dropped_no_target:
        log.warning(
            "SFT data: %d of %d samples truncated to %d tokens, %d dropped (no target left)",
            stats.truncated,
            stats.rows,
            max_len,
            stats.dropped_no_target,
        )
    return out


def read_sft_rows(source: str | Path) -> list[tuple[str, Any]]:
    """``(where, row)`` pairs of a JSONL/Parquet file or ``hf:NAME[:split]`` source."""
    rows = [(f"{source}:{i}", row) for i, row in read_rows(source)]
    if not rows:
        raise DataError(f"{source}: no rows")
    return rows
