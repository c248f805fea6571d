"""CPU speed for `transformers` models: one entry point, `enable(model)`, and one switch,
``R1LAB_CPU`` = ``auto`` (default) | ``on`` | ``off``.

The engines call `enable` on every model they run (`HFGenerator`, `HFLearner`, `load_model`,
the tiny model's pretraining). Each piece changes speed only, never results beyond float32
rounding (tested against the plain PyTorch path):

* ``linear.py``: float32 ``nn.Linear`` layers through oneDNN where a one-off timing on this
  machine finds it at least 1.15x faster than PyTorch's default (MKL) kernel;
* ``kernels.py`` + ``csrc/``: fused C kernels for the decode step of `KVDecoder`
  (``kv_decode.py``, the lean no-grad sampler `HFGenerator` uses for Qwen2 / Llama models),
  compiled on first use with the system C compiler.

``auto`` takes each piece where it is available (and, for oneDNN, measured faster here); ``on``
forces every piece (an error when the C kernels cannot be built); ``off`` runs plain PyTorch.
What each piece gains, per CPU: benchmarks/README.md ("CPU speed pieces").
"""

from __future__ import annotations

import os

ENV = "R1LAB_CPU"
MODES = ("auto", "on", "off")


def mode() -> str:
    """The switch's value (``auto`` when unset); a ValueError names the known values."""
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"{ENV}={value!r}: expected one of {', '.join(MODES)}")
    return value


def enable(model) -> None:
    """Apply the CPU pieces the switch allows to ``model`` (idempotent; a no-op for tensors on
    another device, which every piece checks per call)."""
    from r1lab.engines.cpu import linear

    linear.enable(model)
