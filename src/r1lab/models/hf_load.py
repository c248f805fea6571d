"""Load any Hugging Face causal LM (local directory, hub id, or an r1lab model spec) for r1lab.

A model spec is ``<prefix>:<rest>``; `MODEL_RESOLVERS` maps a prefix to a function turning
``rest`` into a local directory (building or fetching it if needed). Built in: ``fetch:<name>``
(`r1lab.models.fetch`, e.g. ``fetch:smollm2``). Other modules register their own prefix::

    from r1lab.models.hf_load import MODEL_RESOLVERS

    @MODEL_RESOLVERS.register("tiny")
    def _resolve_tiny(size: str) -> str: ...

Modules listed in `RESOLVER_MODULES` are imported on first resolution, so their prefixes work
without the caller importing them. Anything that is not a spec (a path, a hub id) passes through.

`load_causal_lm` returns the model in eval mode and its tokenizer ready for batched generation
(a pad token inside the model's vocabulary, left padding). Hub ids need network access; offline they fail with one line.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable
from pathlib import Path

from r1lab.errors import ConfigError, R1LabError
from r1lab.registry import Registry

log = logging.getLogger(__name__)

MODEL_RESOLVERS: Registry[Callable[[str], str]] = Registry("model spec prefix")
# Imported lazily by resolve_model_path: modules that register a prefix into MODEL_RESOLVERS.
RESOLVER_MODULES: tuple[str, ...] = ("r1lab.models.tiny",)

DTYPES = ("float32", "bfloat16", "float16", "auto")
_SPEC = re.compile(r"^([a-z][a-z0-9_-]*):(.+)$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@MODEL_RESOLVERS.register("fetch")
def _resolve_fetch(name: str) -> str:
    from r1lab.models.fetch import fetch_model

    return str(fetch_model(name))


def _load_resolver_modules() -> None:
    for module in RESOLVER_MODULES:
        importlib.import_module(module)


def resolve_model_path(spec: str) -> str:
    """``fetch:smollm2`` -> the fetched directory (fetching if needed); other strings unchanged.

    A string whose prefix is not registered is returned unchanged (it may be a path or hub id);
    `load_causal_lm` reports it with the known prefixes if nothing by that name exists.
    """
    match = _SPEC.match(spec)
    if match is None or Path(spec).expanduser().exists():
        return spec
    _load_resolver_modules()
    prefix, rest = match.groups()
    if prefix not in MODEL_RESOLVERS:
        return spec
    return MODEL_RESOLVERS.get(prefix)(rest)


def _torch_dtype(dtype: str):
    import torch

    if dtype not in DTYPES:
        raise ConfigError(f"unknown model dtype {dtype!r}; known: {', '.join(DTYPES)}")
    return dtype if dtype == "auto" else getattr(torch, dtype)


def _check_source(spec: str, source: str) -> bool:
    """True for an existing local model directory, False for a hub id; else R1LabError."""
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise R1LabError(f"{source} is not a Hugging Face model directory (no config.json)")
        return True
    if path.exists():
        raise R1LabError(f"model path {source} is a file; pass the model's directory")
    match = _SPEC.match(spec)
    if match is not None:
        known = ", ".join(MODEL_RESOLVERS.names())
        raise R1LabError(
            f"unknown model spec prefix {match.group(1)!r} in {spec!r}; known prefixes: {known} "
            f"(or pass a model directory or a hub id)"
        )
    looks_like_path = source.startswith(("/", ".", "~")) or source.count("/") > 1
    if looks_like_path or not _HUB_ID.match(source):
        raise R1LabError(f"model path {source} does not exist")
    return False


def load_causal_lm(path_or_id: str, *, dtype: str = "float32", device: str = "cpu"):
    """(model, tokenizer) from a local HF directory, a hub id, or a spec such as ``fetch:smollm2``.

    dtype: one of DTYPES; device: a torch device string. The model is in eval mode; the tokenizer
    pads on the left with its pad token (the EOS token when it has none).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from r1lab.engines import cpu

    torch_dtype = _torch_dtype(dtype)
    try:
        torch_device = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"bad model device {device!r}: {exc}") from None
    source = resolve_model_path(str(path_or_id))
    if _check_source(str(path_or_id), source):
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise R1LabError(
                f"could not load {source!r}: it is no local directory, and loading it as a "
                f"Hugging Face hub id failed ({first}). Offline, pass a local model directory or "
                f"a spec such as fetch:smollm2"
            ) from exc
    _prepare_tokenizer(tokenizer, model.get_input_embeddings().num_embeddings, source)
    gen = getattr(model, "generation_config", None)
    if gen is not None and gen.pad_token_id is None:
        gen.pad_token_id = tokenizer.pad_token_id
    model.to(torch_device)
    model.eval()
    cpu.enable(model)
    return model, tokenizer


def _prepare_tokenizer(tokenizer, vocab_size: int, source: str) -> None:
    """Pad on the left with the tokenizer's pad token, or EOS where it has no usable one.

    A pad id outside the model's embedding table is unusable: transformers' tokenizer classes
    invent one (Qwen2Tokenizer adds ``<|endoftext|>``) for checkpoints saved without a pad token.
    """
    pad_id = tokenizer.pad_token_id
    if pad_id is not None and pad_id >= vocab_size:
        log.warning(
            "%s: pad token %r (id %d) is outside the model's vocabulary (%d); padding with EOS",
            source,
            tokenizer.pad_token,
            pad_id,
            vocab_size,
        )
        pad_id = None
    if pad_id is None:
        if tokenizer.eos_token is None:
            raise R1LabError(f"the tokenizer of {source} has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
