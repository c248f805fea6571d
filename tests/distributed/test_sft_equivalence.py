"""SFT on 2 processes (gloo, CPU; DDP and FSDP2) takes the steps 1 process takes: the same loss,
gradient norm, held-out loss and final weights. Each rank trains on every other sample of a
step; the loss divides by the step's global target-token count (engines/hf_learner.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from r1lab.data.general_chat import general_sft_rows
from r1lab.models.tiny import build_model
from r1lab.pipelines import sft
from r1lab.utils.jsonl import read_jsonl

sys.path.insert(0, str(Path(__file__).parent))
import dist_workers as W  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_tokenizer) -> tuple[Path, Path]:
    """(directory of the 1-process run, directory holding the 2-process ``ddp`` / ``fsdp2``)."""
    tmp = tmp_path_factory.mktemp("sft-equivalence")
    model_dir = tmp / "model"
    build_model("test", tiny_tokenizer, seed=0).save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)
    data = tmp / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in general_sft_rows(22)))
    torch.set_num_threads(1)
    sft.run(W.sft_config(str(model_dir), str(data), str(tmp), "one"), log=lambda *_: None)
    args = (2, str(tmp / "store"), str(model_dir), str(data), str(tmp))
    mp.spawn(W.sft_worker, args=args, nprocs=2, join=True)
    return tmp / "one", tmp


@pytest.mark.parametrize("mode", ["ddp", "fsdp2"])
def test_sft_two_processes_equal_one_process(runs, mode):
    one, tmp = runs
    ref, got = read_jsonl(one / "metrics.jsonl"), read_jsonl(tmp / mode / "metrics.jsonl")
    assert [r["step"] for r in got] == [r["step"] for r in ref] == list(range(5))
    assert min(r["samples"] for r in ref if "samples" in r) == 1  # a step leaves rank 1 none
    for a, b in zip(ref, got):
        for key in ("loss", "grad_norm", "eval_loss", "lr", "samples", "target_tokens"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), (a["step"], key)
    w_one = load_file(one / "checkpoint" / "model.safetensors")
    w_two = load_file(tmp / mode / "checkpoint" / "model.safetensors")
    assert w_one.keys() == w_two.keys()
    for k in w_one:
        torch.testing.assert_close(w_two[k], w_one[k], atol=1e-5, rtol=0, msg=k)
