"""Which device a model trains and samples on: ``model.device`` of a recipe, resolved here (the
engines layer is the one place that names CUDA).

``auto`` = this process's GPU when one is visible (under torchrun ``cuda:LOCAL_RANK``), else the
CPU; any other value is a torch device string (``cpu``, ``cuda:1``, ``mps``) used as given.
`device_problem` says, at config load time, when such a string names no device of this machine.
"""

from __future__ import annotations

import os

import torch


def resolve_device(spec: str = "auto") -> str:
    if spec != "auto":
        return spec
    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"


def available_devices() -> list[str]:
    """The device strings that work here: auto, cpu, then cuda and cuda:i per visible GPU, mps."""
    out = ["auto", "cpu"]
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n:
        out += ["cuda", *(f"cuda:{i}" for i in range(n))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def device_problem(spec: str) -> str | None:
    """None when `spec` names a device of this machine, else what is allowed here (one phrase)."""
    if spec == "auto":
        return None
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        return f"a torch device: one of {', '.join(available_devices())}"
    if dev.type == "cpu":
        return None
    known = available_devices()
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n and (dev.index is None or dev.index < n):
            return None
        gpus = "no CUDA GPU" if not n else f"{n} CUDA GPU{'s' if n > 1 else ''}"
        return f"one of {', '.join(known)} (this machine has {gpus})"
    if spec in known:
        return None
    return f"one of {', '.join(known)} (the devices of this machine)"
