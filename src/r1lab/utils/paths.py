"""Where r1lab keeps caches and runs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$R1LAB_CACHE`` or ``~/.cache/r1lab``: pretrained tiny bases, fetched models."""
    return Path(os.environ.get("R1LAB_CACHE", Path.home() / ".cache" / "r1lab")).expanduser()
