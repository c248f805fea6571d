"""Stage 0 for the embedded default: pretrain the tiny "V3-Base" analog on the synthetic corpus.

Next-token prediction over packed documents (EOT-separated), AdamW with warm-up and cosine decay.
With ``packing="documents"`` (the default) every row starts at a document start and position ids
restart at each document, so attention stays inside a document (as at inference, where a prompt
starts at position 0 with nothing before it) and no row opens with a document cut off from its
question; ``packing="stream"`` is plain random windows over the stream with attention across
documents.
The result is cached on disk under a hash of the config, so the demo and every test that asks for
the same base reuse it. The output is a plain Hugging Face directory (safetensors + tokenizer).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from r1lab.config import above, at_least, constrained, count, one_of, save_config, to_dict
from r1lab.data.corpus import CorpusMix, build_corpus
from r1lab.errors import ConfigError
from r1lab.models.tiny import SIZES, build_model, build_tokenizer, chat_text, num_parameters
from r1lab.utils.paths import cache_root
from r1lab.utils.progress import progress_bar

CORPUS_VERSION = 3  # bump when the corpus or the training loop changes what a config produces
# 3: pretraining trains through the Learner (NLL from its log-probs, not HF's cross_entropy):
# the same model up to float rounding, which 800 steps turn into another base


@constrained(
    size=one_of(tuple(SIZES)),
    difficulty=count(),
    n_docs=count(),
    vocab_size=count(),
    steps=count(),
    batch_size=count(),
    seq_len=count(),
    lr=above(0),
    warmup=count(0),
    weight_decay=at_least(0),
    threads=count(0),
    packing=one_of(("documents", "stream")),
)
@dataclass(frozen=True)
class PretrainConfig:
    size: str = "1m"
    tasks: tuple[str, ...] = ("arith",)
    difficulty: int = 1
    n_docs: int = 40000
    vocab_size: int = 1024
    steps: int = 800
    batch_size: int = 32
    seq_len: int = 144  # the longest corpus document (~140 tokens) fits in one row
    lr: float = 3e-3
    warmup: int = 50
    weight_decay: float = 0.01
    seed: int = 0
    threads: int = 0  # 0 = torch default
    packing: str = "documents"  # "documents" (per-document attention) or "stream"
    mix: CorpusMix = field(default_factory=CorpusMix)


def config_hash(cfg: PretrainConfig) -> str:
    fields = {k: v for k, v in to_dict(cfg).items() if k != "threads"}  # speed, not identity
    blob = json.dumps({"v": CORPUS_VERSION, **fields}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def base_dir(cfg: PretrainConfig) -> Path:
    return cache_root() / "tiny" / f"{cfg.size}-{config_hash(cfg)}"


def ensure_base(cfg: PretrainConfig, *, progress: bool = True, log=print) -> Path:
    """The cached base model directory for `cfg`, pretraining it first if it is missing."""
    out = base_dir(cfg)
    if (out / "config.json").exists() and (out / "pretrain.json").exists():
        log(f"[pretrain] reusing cached base model {out}")
        return out
    return pretrain(cfg, out, progress=progress, log=log)


def packed_batches(
    token_stream: list[int],
    seq_len: int,
    batch_size: int,
    seed: int,
    *,
    eos_id: int | None = None,
    packing: str = "stream",
):
    """Endless ``(input_ids, position_ids)`` pairs of shape (batch_size, seq_len).

    ``stream``: windows at random offsets of the packed stream, positions 0..seq_len-1.
    ``documents``: windows start at random document starts (the token after an ``eos_id``) and
    positions restart at 0 after every ``eos_id``, which transformers turns into a block-diagonal
    causal mask (per-document attention) when no attention mask is given.
    """
    import torch

    if packing not in ("stream", "documents"):
        raise ConfigError(f"pretrain.packing must be 'stream' or 'documents', got {packing!r}")
    data = torch.tensor(token_stream, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    hi = len(data) - seq_len - 1
    if packing == "documents":
        if eos_id is None:
            raise ConfigError("packing='documents' needs the end-of-text token id")
        starts_all = torch.cat(
            [torch.zeros(1, dtype=torch.long), (data == eos_id).nonzero()[:, 0] + 1]
        )
        starts_all = starts_all[starts_all < hi]
    idx = torch.arange(seq_len)
    while True:
        if packing == "documents":
            pick = torch.randint(0, len(starts_all), (batch_size,), generator=gen)
            starts = starts_all[pick]
        else:
            starts = torch.randint(0, hi, (batch_size,), generator=gen)
        x = torch.stack([data[s : s + seq_len] for s in starts.tolist()])
        if packing == "stream":
            yield x, idx.expand(batch_size, -1)
            continue
        doc_start = torch.zeros_like(x, dtype=torch.bool)
        doc_start[:, 0] = True
        doc_start[:, 1:] = x[:, :-1] == eos_id
        first = torch.where(doc_start, idx, torch.zeros_like(idx)).cummax(dim=1).values
        yield x, idx - first


def lr_at(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def pretrain(cfg: PretrainConfig, out: Path, *, progress: bool = True, log=print) -> Path:
    import torch

    from r1lab.engines import cpu
    from r1lab.engines.hf_learner import Learner, adamw
    from r1lab.pipelines.sft import nll_loss
    from r1lab.pipelines.sft_batching import SFTBatch
    from r1lab.utils.checkpoint import atomic_dir

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t0 = time.time()
    docs = build_corpus(
        cfg.n_docs,
        tasks=cfg.tasks,
        difficulty=cfg.difficulty,
        seed=cfg.seed,
        chat_fmt=chat_text,
        mix=cfg.mix,
    )
    tok = build_tokenizer(docs, cfg.vocab_size)
    stream: list[int] = []
    for ids in tok(docs)["input_ids"]:
        stream += ids + [tok.eos_token_id]
    model = build_model(cfg.size, tok, seed=cfg.seed)
    cpu.enable(model)
    log(
        f"[pretrain] {num_parameters(model):,} params, vocab {len(tok)}, "
        f"{len(docs):,} docs / {len(stream):,} tokens, {cfg.steps} steps"
    )
    # the schedule is `lr_at`, set before each step
    learner = Learner(model, adamw(cfg.lr, cfg.weight_decay, betas=(0.9, 0.95)), max_grad_norm=1.0)
    batches = packed_batches(
        stream,
        cfg.seq_len,
        cfg.batch_size,
        cfg.seed,
        eos_id=tok.eos_token_id,
        packing=cfg.packing,
    )
    mask = torch.ones(cfg.batch_size, cfg.seq_len)
    mask[:, -1] = 0.0  # next-token prediction: every token but a row's first is a target
    history = []
    with progress_bar("pretrain", cfg.steps, progress) as advance:
        for step in range(cfg.steps):
            for g in learner.optimizer.param_groups:
                g["lr"] = lr_at(step, cfg)
            x, pos = next(batches)  # no attention mask: restarting positions = documents
            batch = SFTBatch(x, pos, None, x.roll(-1, 1), mask, torch.full_like(x, -1), len(x))
            loss = learner.update(batch, nll_loss)["loss"]
            if step % 25 == 0 or step == cfg.steps - 1:
                history.append({"step": step, "loss": round(loss, 4)})
            advance(info=f"loss {loss:.3f}")
    model.eval()
    summary = {"seconds": round(time.time() - t0, 1), "params": num_parameters(model)}
    with atomic_dir(out) as tmp:  # a killed pretraining never leaves a half-written cache entry
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        save_config(cfg, tmp / "pretrain_config.yaml")
        (tmp / "pretrain.json").write_text(json.dumps({**summary, "history": history}, indent=1))
    log(f"[pretrain] done in {summary['seconds']}s, final loss {history[-1]['loss']} -> {out}")
    return out
