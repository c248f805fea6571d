"""LoRA (PEFT) for the RL policy, and the reference as the same model with its adapters disabled.

`apply_lora` wraps a `transformers` causal LM with PEFT's `get_peft_model`: the base weights are
frozen (``requires_grad=False``) and only the adapter matrices train, so an optimizer built from
the parameters that require grad gets the adapters only. PEFT injects its LoRA layers into the
model in place, so ``peft_model.get_base_model()`` is the plain `transformers` class, adapters
included: that is the policy the engines sample from and differentiate (its ``base_model`` is
the decoder, as `engines.hf.completion_logprobs` expects).

The KL reference of a LoRA run is the base model, i.e. the policy under PEFT's
``disable_adapter()``. `AdapterDisabledReference` exposes what the log-prob code uses (the
parameters, the config, the LM head, the decoder and the full forward) and runs every forward
with the adapters disabled: no second copy of the weights.

`merged_state_dict` gives the policy's weights under the plain (un-PEFTed) parameter names with
every adapter folded in (``W + scale * B @ A``) without touching the model: what a rollout engine
loads and what `save_lora_run` writes as a plain Hugging Face directory.

Not here: which modules to target or the rank (the recipe's ``lora`` section) and the loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from r1lab.errors import ConfigError, R1LabError

ADAPTER = "default"  # PEFT's adapter name; r1lab trains one adapter
ADAPTER_DIR = "adapter"  # inside the run's checkpoint/: the PEFT adapter alone
# LoRA on these would be ignored by the chunked log-prob path, which reads the head weight directly
_UNSUPPORTED_TARGETS = ("lm_head", "embed_tokens")


def _peft():
    try:
        import peft
    except ImportError:
        raise R1LabError("LoRA needs the peft package: pip install 'r1lab[lora]'") from None
    return peft


def apply_lora(
    model,
    *,
    r: int,
    alpha: float,
    dropout: float,
    target_modules: Sequence[str],
):
    """``get_peft_model(model, LoraConfig(...))``; the returned PeftModel trains adapters only."""
    if r < 1:
        raise ConfigError(f"lora.r must be >= 1, got {r}")
    if not target_modules:
        raise ConfigError("lora.target_modules must name at least one module (e.g. q_proj)")
    bad = [t for t in target_modules if t in _UNSUPPORTED_TARGETS]
    if bad:
        raise ConfigError(
            f"lora.target_modules: {', '.join(bad)} not supported (the log-prob path reads the "
            "LM head weight directly); target the attention/MLP projections"
        )
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in target_modules if t not in names]
    if missing:
        raise ConfigError(
            f"lora.target_modules: no module named {', '.join(missing)} in {type(model).__name__}"
        )
    peft = _peft()
    config = peft.LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, config)


def lora_layers(peft_model) -> Iterator[tuple[str, torch.nn.Module]]:
    """(name, module) of every LoRA-wrapped layer, names relative to ``get_base_model()``."""
    from peft.tuners.lora import LoraLayer

    for name, module in peft_model.get_base_model().named_modules():
        if isinstance(module, LoraLayer):
            yield name, module


@torch.no_grad()
def merged_state_dict(peft_model) -> dict[str, torch.Tensor]:
    """The policy's weights with every adapter folded in, under the plain model's names.

    Non-LoRA tensors are returned as they are (same storage, so tied weights stay tied); a
    LoRA-wrapped linear ``name`` gives ``name.weight = W + delta`` as a new tensor. The model is
    not modified (no merge/unmerge round trip, so the base weights stay bit-identical).
    """
    deltas = {
        f"{name}.weight": module.get_delta_weight(ADAPTER)
        for name, module in lora_layers(peft_model)
        if ADAPTER in module.lora_A
    }
    out: dict[str, torch.Tensor] = {}
    for key, tensor in peft_model.get_base_model().state_dict().items():
        if ".lora_" in key:
            continue
        key = key.replace(".base_layer.", ".")
        out[key] = tensor + deltas[key].to(tensor.dtype) if key in deltas else tensor
    return out


class _DisabledCall:
    """A module call that runs with the adapters of ``peft_model`` disabled."""

    def __init__(self, peft_model, module) -> None:
        self._peft_model = peft_model
        self._module = module

    def __call__(self, *args, **kwargs):
        with self._peft_model.disable_adapter():
            return self._module(*args, **kwargs)


class AdapterDisabledReference:
    """The frozen base model of a LoRA policy: the policy's own weights, adapters disabled.

    Passed where a separate reference model would go (``learner.logprobs(ref, batch)``). It
    holds no weights of its own. Its forward passes run under ``peft_model.disable_adapter()``
    and therefore must not overlap a policy forward (the loop runs them one after the other).
    """

    def __init__(self, peft_model) -> None:
        self._peft_model = peft_model
        self._inner = peft_model.get_base_model()

    @property
    def config(self):
        return self._inner.config

    def parameters(self):
        return self._inner.parameters()

    def get_output_embeddings(self):
        return self._inner.get_output_embeddings()

    @property
    def base_model(self) -> _DisabledCall:
        """The decoder (hidden states), run with adapters disabled."""
        return _DisabledCall(self._peft_model, self._inner.base_model)

    def __call__(self, *args, **kwargs):
        return _DisabledCall(self._peft_model, self._inner)(*args, **kwargs)


def save_lora_run(peft_model, tokenizer, checkpoint: Path) -> Path:
    """Write ``checkpoint/`` as a plain Hugging Face directory with the adapters merged in (what
    `r1lab eval` and plain `transformers` load) and ``checkpoint/adapter/`` as the PEFT adapter
    alone (``PeftModel.from_pretrained(base, checkpoint / "adapter")``). Returns the adapter dir.
    """
    checkpoint = Path(checkpoint)
    peft_model.get_base_model().save_pretrained(
        checkpoint, state_dict=merged_state_dict(peft_model)
    )
    tokenizer.save_pretrained(checkpoint)
    adapter_dir = checkpoint / ADAPTER_DIR
    peft_model.save_pretrained(adapter_dir)
    return adapter_dir
