"""Train the tiny preference reward model (R1 §2.3.4's RM, in miniature) on synthetic pairs.

The loop, in reading order: synthetic preference pairs (`data.preferences`) -> a
``Qwen2ForSequenceClassification`` (num_labels 1) initialised from a causal-LM base's weights
(``init: base``; the score head is new) or at random in a named tiny size with the base's
tokenizer (``init: random``) -> Bradley-Terry loss ``-log sigmoid(r_chosen - r_rejected)`` with
AdamW (`algo.bradley_terry` through the `Learner`) -> held-out pairwise accuracy (the share of pairs with ``r_chosen > r_rejected``) -> a plain
HF directory (safetensors + tokenizer) that `engines.reward_model.load_scorer` reads. Pairs are
rendered by that same scorer, so training and scoring see the same text.

`ensure_reward_model` caches the result under a hash of the config and of the base directory, as
`pretrain.ensure_base` does for the tiny base, so the R1 pipeline and the tests reuse it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from r1lab.config import above, at_least, constrained, count, one_of, save_config, to_dict
from r1lab.data.preferences import preference_pairs, split_pairs
from r1lab.errors import ConfigError
from r1lab.utils.checkpoint import atomic_dir
from r1lab.utils.paths import cache_root
from r1lab.utils.progress import progress_bar

RM_VERSION = 1  # bump when the pairs or the training loop change what a config produces


def _held_out_smaller(cfg: RewardModelTrainConfig) -> tuple[str, str] | None:
    return None if cfg.n_eval < cfg.n_pairs else ("n_eval", f"an integer < n_pairs={cfg.n_pairs}")


@constrained(
    _held_out_smaller,
    init=one_of(("base", "random")),
    n_pairs=count(),
    n_eval=count(),
    steps=count(),
    batch_size=count(),
    lr=above(0),
    weight_decay=at_least(0),
    max_len=count(),
    threads=count(0),
)
@dataclass(frozen=True)
class RewardModelTrainConfig:
    init: str = "base"  # "base": the base's weights + a new score head; "random": a fresh `size`
    size: str = "test"  # tiny size for init=random (models.tiny.SIZES)
    n_pairs: int = 1200
    n_eval: int = 200  # held-out pairs for pairwise accuracy
    steps: int = 150
    batch_size: int = 16  # pairs per step
    lr: float = 1e-3
    weight_decay: float = 0.0
    max_len: int = 128  # tokens per rendered pair (the scorer truncates from the left)
    seed: int = 0
    threads: int = 0


def config_hash(cfg: RewardModelTrainConfig, base: Path) -> str:
    fields = {k: v for k, v in to_dict(cfg).items() if k != "threads"}
    blob = json.dumps(
        {"v": RM_VERSION, "base": str(Path(base).resolve()), **fields}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def ensure_reward_model(
    cfg: RewardModelTrainConfig, base: Path, *, progress: bool = True, log=print
) -> Path:
    """The cached RM directory for (cfg, base), training it first when it is missing."""
    out = cache_root() / "reward_model" / f"{cfg.init}-{config_hash(cfg, base)}"
    if (out / "config.json").exists() and (out / "reward_model.json").exists():
        log(f"[reward_model] reusing cached reward model {out}")
        return out
    return train_reward_model(cfg, Path(base), out, progress=progress, log=log)


def _build(cfg: RewardModelTrainConfig, base: Path):
    import torch
    from transformers import AutoConfig, AutoTokenizer, Qwen2Config, Qwen2ForSequenceClassification

    from r1lab.models.tiny import SIZES
    from r1lab.utils.paths import quiet_transformers

    quiet_transformers()
    tokenizer = AutoTokenizer.from_pretrained(base)
    torch.manual_seed(cfg.seed)
    if cfg.init == "base":
        base_cfg = AutoConfig.from_pretrained(base)
        if base_cfg.model_type != "qwen2":
            raise ConfigError(
                f"reward_model init=base needs a Qwen2 base, got {base_cfg.model_type}"
            )
        model = Qwen2ForSequenceClassification.from_pretrained(base, num_labels=1)
    elif cfg.init == "random":
        if cfg.size not in SIZES:
            raise ConfigError(f"unknown tiny model size {cfg.size!r}; known: {', '.join(SIZES)}")
        s = SIZES[cfg.size]
        config = Qwen2Config(
            vocab_size=len(tokenizer),
            hidden_size=s.hidden,
            intermediate_size=s.intermediate,
            num_hidden_layers=s.layers,
            num_attention_heads=s.heads,
            num_key_value_heads=s.kv_heads,
            max_position_embeddings=max(cfg.max_len, 256),
            num_labels=1,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = Qwen2ForSequenceClassification(config)
    else:
        raise ConfigError(f"reward_model init must be 'base' or 'random', got {cfg.init!r}")
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def pairwise_accuracy(scorer, pairs: list[dict]) -> float:
    """Share of pairs the RM orders correctly (r_chosen > r_rejected)."""
    prompts = [p["prompt"] for p in pairs]
    chosen = scorer.score(prompts, [p["chosen"] for p in pairs])
    rejected = scorer.score(prompts, [p["rejected"] for p in pairs])
    return sum(c > r for c, r in zip(chosen, rejected, strict=True)) / max(1, len(pairs))


@dataclass
class PairBatch:
    """P pairs as the tokenizer's (2P, L) tensors ``enc`` (chosen rows, then rejected) for
    `Learner.update`; ``mask_BT`` (P, 1) ones: the loss normalizer is the number of pairs."""

    enc: dict
    mask_BT: object

    def micro_batches(self, learner) -> list[PairBatch]:
        return [self]

    def to(self, device) -> PairBatch:
        return PairBatch({k: v.to(device) for k, v in self.enc.items()}, self.mask_BT.to(device))

    def forward(self, model, learner):
        r_2P = model(**self.enc).logits[:, 0]
        P = len(self.mask_BT)
        return r_2P[:P] - r_2P[P:], {}  # margin_P = r_chosen - r_rejected


def bt_loss(margin_P, mb: PairBatch, *, num_seqs: float, **_):
    from r1lab.algo import bradley_terry

    return bradley_terry(margin_P, num_pairs=num_seqs)


def train_reward_model(
    cfg: RewardModelTrainConfig, base: Path, out: Path, *, progress: bool = True, log=print
) -> Path:
    import torch

    from r1lab.engines.hf_learner import Learner, adamw
    from r1lab.engines.reward_model import RewardModelScorer

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.n_eval >= cfg.n_pairs or cfg.steps < 1 or cfg.batch_size < 1:
        raise ConfigError(
            "reward_model training needs n_eval < n_pairs, steps >= 1, batch_size >= 1"
        )
    t0 = time.time()
    train, held = split_pairs(preference_pairs(cfg.n_pairs, cfg.seed), cfg.n_eval, cfg.seed)
    model, tokenizer = _build(cfg, base)
    sides = (tokenizer.padding_side, tokenizer.truncation_side)
    scorer = RewardModelScorer(model, tokenizer, max_len=cfg.max_len, batch_size=2 * cfg.batch_size)
    log(
        f"[reward_model] {sum(p.numel() for p in model.parameters()):,} params, "
        f"{len(train)} training / {len(held)} held-out pairs, {cfg.steps} steps "
        f"(pairs rendered with the {scorer.render_mode})"
    )
    acc_before = pairwise_accuracy(scorer, held)
    learner = Learner(model, adamw(cfg.lr, cfg.weight_decay), max_grad_norm=1.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = []
    with progress_bar("reward model", cfg.steps, progress) as advance:
        for step in range(cfg.steps):
            idx = torch.randint(0, len(train), (cfg.batch_size,), generator=gen).tolist()
            batch = [train[i] for i in idx]
            texts = [scorer.render(p["prompt"], p["chosen"]) for p in batch]
            texts += [scorer.render(p["prompt"], p["rejected"]) for p in batch]
            enc = tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=cfg.max_len,
                return_tensors="pt",
                add_special_tokens=False,
            )
            row = learner.update(PairBatch(dict(enc), torch.ones(len(batch), 1)), bt_loss)
            if step % 25 == 0 or step == cfg.steps - 1:
                acc = row["pair_acc"]
                history.append({"step": step, "loss": round(row["loss"], 4), "train_acc": acc})
            advance(info=f"loss {row['loss']:.3f}")
    model.eval()
    acc_after = pairwise_accuracy(scorer, held)
    summary = {
        "seconds": round(time.time() - t0, 1),
        "heldout_pairwise_accuracy": acc_after,
        "heldout_pairwise_accuracy_before": acc_before,
        "train_pairs": len(train),
        "heldout_pairs": len(held),
        "render_mode": scorer.render_mode,
        "base": str(base),
    }
    tokenizer.padding_side, tokenizer.truncation_side = sides  # the scorer sets its own
    with atomic_dir(out) as tmp:  # a killed training never leaves a half-written cache entry
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        save_config(cfg, tmp / "reward_model_config.yaml")
        (tmp / "reward_model.json").write_text(
            json.dumps({**summary, "history": history}, indent=1)
        )
    log(
        f"[reward_model] done in {summary['seconds']}s: held-out pairwise accuracy "
        f"{acc_before:.3f} -> {acc_after:.3f} -> {out}"
    )
    return out


def reward_model_info(path: Path) -> dict:
    """The training summary saved next to an RM trained here ({} for other RMs)."""
    f = Path(path) / "reward_model.json"
    if not f.exists():
        return {}
    return {k: v for k, v in json.loads(f.read_text()).items() if k != "history"}
