"""The embedded tiny model: a locally trained BPE tokenizer and a Qwen2-architecture causal LM.

Everything is built offline: the tokenizer is trained with `tokenizers` on r1lab's synthetic
corpus (digits are always single tokens, so arithmetic stays learnable; byte-level fallback, so
any text encodes), saved as a Hugging Face tokenizer with special tokens and a chat template; the
model is a `transformers` Qwen2 built from a config with a named size. Both are saved with
`save_pretrained` (safetensors) and load back with plain `from_pretrained`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from r1lab.errors import ConfigError

PAD, EOT, USER, ASSISTANT, SYSTEM, END = (
    "<|pad|>",
    "<|endoftext|>",
    "<|user|>",
    "<|assistant|>",
    "<|system|>",
    "<|end|>",
)
SPECIAL_TOKENS = [PAD, EOT, USER, ASSISTANT, SYSTEM, END]

# One turn: <|role|>content<|end|>. Assistant content is wrapped in generation markers so
# `apply_chat_template(..., return_assistant_tokens_mask=True)` can mask the loss to it.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|assistant|>{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}"
    "{% else %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def chat_text(question: str, answer: str | None = None) -> str:
    """The string CHAT_TEMPLATE renders for one user turn (and an assistant reply)."""
    text = f"{USER}{question}{END}{ASSISTANT}"
    return text if answer is None else f"{text}{answer}{END}"


@dataclass(frozen=True)
class TinySize:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int


SIZES: dict[str, TinySize] = {
    # ~40k parameters: for tests only
    "test": TinySize(hidden=32, layers=2, heads=2, kv_heads=2, intermediate=64),
    # ~300k parameters (with a ~1k-token vocabulary): the smaller student of distill_vs_rl
    "300k": TinySize(hidden=64, layers=4, heads=4, kv_heads=4, intermediate=256),
    # ~1M parameters (with a ~1k-token vocabulary)
    "1m": TinySize(hidden=128, layers=4, heads=4, kv_heads=4, intermediate=512),
    # ~5M parameters
    "5m": TinySize(hidden=256, layers=6, heads=4, kv_heads=4, intermediate=640),
}


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 1024):
    """Train a byte-level BPE (single-digit tokens) on `corpus`; a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOT,
        pad_token=PAD,
        additional_special_tokens=[USER, ASSISTANT, SYSTEM, END],
        padding_side="left",
        model_max_length=1024,
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


def build_model(size: str, tokenizer, *, max_positions: int = 1024, seed: int = 0):
    """A randomly initialised Qwen2ForCausalLM of a named size, sized to `tokenizer`."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    if size not in SIZES:
        raise ConfigError(f"unknown tiny model size {size!r}; known: {', '.join(SIZES)}")
    s = SIZES[size]
    eos_ids = [tokenizer.convert_tokens_to_ids(t) for t in (EOT, END)]
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=s.hidden,
        intermediate_size=s.intermediate,
        num_hidden_layers=s.layers,
        num_attention_heads=s.heads,
        num_key_value_heads=s.kv_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_ids,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=eos_ids, pad_token_id=tokenizer.pad_token_id
    )
    return model


def num_parameters(model) -> int:
    """Unique parameters (a tied LM head counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
