"""Where r1lab keeps caches and runs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$R1LAB_CACHE`` or ``~/.cache/r1lab``: pretrained tiny bases, fetched models."""
    return Path(os.environ.get("R1LAB_CACHE", Path.home() / ".cache" / "r1lab")).expanduser()


def quiet_transformers() -> None:
    """No per-load / per-save progress bars from transformers: r1lab shows its own progress."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
