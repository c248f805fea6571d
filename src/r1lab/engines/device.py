"""Which device a model trains and samples on: ``model.device`` of a recipe, resolved here (the
engines layer is the one place that names CUDA).

``auto`` = this process's GPU when one is visible (under torchrun ``cuda:LOCAL_RANK``), else the
CPU; any other value is a torch device string (``cpu``, ``cuda:1``, ``mps``) used as given.
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
