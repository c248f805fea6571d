"""``data.skip_bad_rows=true``: an RL run on a file with some bad rows trains on the good ones and
records how many it skipped in the first metrics row (``data/skipped_rows``)."""

from __future__ import annotations

import json

import pytest

from r1lab.config import load_config
from r1lab.errors import DataError
from r1lab.models.tiny import build_model
from r1lab.pipelines import grpo
from r1lab.pipelines.rl_config import RLConfig


def one_step(tmp_path, tokenizer, *extra):
    cfg = load_config(
        RLConfig,
        "r1_zero_tiny",
        [
            f"output_dir={tmp_path}",
            "run_name=skip",
            "progress=false",
            "threads=1",
            "grpo.steps=1",
            "grpo.prompts_per_step=2",
            "grpo.mini_batches=1",
            "grpo.group_size=2",
            "sampling.max_new_tokens=4",
            *extra,
        ],
    )
    model = build_model("test", tokenizer, seed=0)
    return grpo.run(cfg, model=model, tokenizer=tokenizer, log=lambda *_: None).metrics


def test_bad_rows_fail_the_run_or_are_skipped_and_counted(tmp_path, tiny_tokenizer):
    good = {"question": "Compute 1 + 1", "answer": "2", "verifier": "number"}
    rows = [good, {"question": "Compute 2 + 2"}, good, {**good, "verifier": "nosuch"}]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"train.jsonl:2: missing 'answer'"):
        one_step(tmp_path / "strict", tiny_tokenizer, f"data.train_file={train}")
    metrics = one_step(
        tmp_path / "skip", tiny_tokenizer, f"data.train_file={train}", "data.skip_bad_rows=true"
    )
    assert metrics[0]["data/skipped_rows"] == 2
