"""Wiring shared by the stage pipelines: seeding, run directories, models, task data."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

from r1lab.config import save_config
from r1lab.data.loaders import load_examples
from r1lab.data.tasks import generate_mix
from r1lab.data.templates import render_prompt
from r1lab.errors import ConfigError
from r1lab.types import Example


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def make_run_dir(output_dir: str, run_name: str, kind: str, cfg) -> Path:
    name = run_name or f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(output_dir) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    return run_dir


def load_model(
    path: str,
    *,
    pretrain_cfg=None,
    dtype: str = "float32",
    device: str = "cpu",
    progress=True,
    log=print,
):
    """(model, tokenizer) for ``tiny`` (the cached embedded base), a HF directory or a hub id,
    on ``device`` (``auto``: the GPU when one is visible, see `engines.device`)."""
    from r1lab.engines.device import resolve_device
    from r1lab.models.hf_load import load_causal_lm
    from r1lab.utils.paths import quiet_transformers

    quiet_transformers()
    if path == "tiny":
        from r1lab.pipelines.pretrain import PretrainConfig, ensure_base

        path = str(ensure_base(pretrain_cfg or PretrainConfig(), progress=progress, log=log))
    return load_causal_lm(path, dtype=dtype, device=resolve_device(device))


def task_examples(data_cfg, split: str) -> list[Example]:
    """Examples of a split: from the configured file, else generated from the task registry."""
    file = data_cfg.train_file if split == "train" else data_cfg.test_file
    if file:
        examples = load_examples(file, skip_bad=data_cfg.skip_bad_rows)
        if examples.skipped:
            logging.getLogger("r1lab.data").warning(
                "data.skip_bad_rows: skipped %d bad rows of %s (first: %s)",
                examples.skipped,
                file,
                examples.first_skipped,
            )
        return examples
    n = data_cfg.n_train if split == "train" else data_cfg.n_test
    if n <= 0:
        raise ConfigError(f"data.n_{split} must be positive")
    return generate_mix(
        data_cfg.tasks, n, split=split, seed=data_cfg.seed, difficulty=data_cfg.difficulty
    )


def prompts_for(examples: list[Example], template: str, tokenizer) -> list[str]:
    return [render_prompt(template, ex.question, tokenizer) for ex in examples]
