"""A preference reward model as a scorer: any HF ``AutoModelForSequenceClassification`` directory
with ``num_labels == 1`` maps (prompt, response) pairs to one scalar each (R1 §2.3.4).

How a pair is rendered: with the RM tokenizer's chat template when it has one (one user turn, one
assistant turn, ``add_generation_prompt=False``), else the plain join ``prompt + "\\n\\n" +
response``. `RewardModelScorer.render_mode` says which. Inputs are right-padded (so position ids
of real tokens do not depend on the batch) and truncated to ``max_len`` tokens keeping the END of
the text, where the response is; the model reads the last non-pad token.

`load_scorer` caches one scorer per (path, max_len, batch_size) in the process, so a training run
loads each RM once, not once per reward call. This module is where torch runs for the
``rm_helpful`` / ``rm_harmless`` reward components (`r1lab.rewards.preference` imports it lazily).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path

import torch

from r1lab.errors import ConfigError

_CACHE: dict[tuple[str, int, int], RewardModelScorer] = {}
_LOCK = threading.Lock()


class RewardModelScorer:
    """Scalar preference scores of (prompt, response) pairs from a sequence-classification model."""

    def __init__(self, model, tokenizer, *, max_len: int = 512, batch_size: int = 32) -> None:
        if getattr(model.config, "num_labels", None) != 1:
            raise ConfigError(
                f"a reward model needs num_labels=1 (one scalar score), got "
                f"{getattr(model.config, 'num_labels', None)}"
            )
        if max_len < 2 or batch_size < 1:
            raise ConfigError(
                f"reward model max_len >= 2 and batch_size >= 1 (got {max_len}, {batch_size})"
            )
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        tokenizer.padding_side = "right"
        tokenizer.truncation_side = "left"  # keep the response when a pair is too long
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_len = max_len
        self.batch_size = batch_size
        self.render_mode = "chat_template" if getattr(tokenizer, "chat_template", None) else "plain"

    def render(self, prompt: str, response: str) -> str:
        if self.render_mode == "chat_template":
            messages = [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": response},
            ]
            return self.tokenizer.apply_chat_template(messages, tokenize=False)
        return f"{prompt}\n\n{response}"

    @torch.no_grad()
    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """Shapes: prompts (N,), responses (N,) -> N finite floats (batches of ``batch_size``)."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts for {len(responses)} responses")
        texts = [self.render(p, r) for p, r in zip(prompts, responses, strict=True)]
        out: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(
                texts[start : start + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_len,
                return_tensors="pt",
                add_special_tokens=False,
            )
            logits_N1 = self.model(
                input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
            ).logits
            out += logits_N1[:, 0].float().tolist()
        bad = [x for x in out if not math.isfinite(x)]
        if bad:
            raise ValueError(f"reward model returned {len(bad)} non-finite scores")
        return out


def load_scorer(path: str | Path, *, max_len: int = 512, batch_size: int = 32) -> RewardModelScorer:
    """The process-wide cached scorer of the RM directory ``path`` (loaded on first use)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from r1lab.utils.paths import quiet_transformers

    path = Path(path)
    if not (path / "config.json").exists():
        raise ConfigError(f"reward model {str(path)!r} is not a Hugging Face model directory")
    key = (str(path.resolve()), int(max_len), int(batch_size))
    with _LOCK:
        if key not in _CACHE:
            quiet_transformers()
            model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
            tokenizer = AutoTokenizer.from_pretrained(path)
            _CACHE[key] = RewardModelScorer(
                model, tokenizer, max_len=max_len, batch_size=batch_size
            )
        return _CACHE[key]


def clear_cache() -> None:
    """Forget loaded scorers (tests; a run that retrains an RM in the same directory)."""
    with _LOCK:
        _CACHE.clear()
