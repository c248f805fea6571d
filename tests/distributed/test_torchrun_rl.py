"""`r1lab rl` under `torchrun --nproc_per_node 2` (gloo, CPU): DDP and FSDP2 runs complete, rank 0
alone writes the logs, a multi-process run resumes, and a failure on one rank stops every rank
instead of leaving the others waiting in a collective."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from r1lab.utils.jsonl import read_jsonl

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "pipelines"))
import dist_workers as W  # noqa: E402
from test_grpo import char_tokenizer, plain_qwen2  # noqa: E402

TORCHRUN = Path(sys.executable).parent / "torchrun"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("plain")
    tok = char_tokenizer()
    tok.save_pretrained(d)
    torch.manual_seed(0)
    plain_qwen2(tok, layers=2).save_pretrained(d)
    return d


def torchrun_rl(model_dir, out, name, steps, *extra) -> subprocess.CompletedProcess:
    cmd = [
        str(TORCHRUN),
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "r1lab.cli",
        "rl",
        "r1_zero_tiny",
        f"model.path={model_dir}",
        f"output_dir={out}",
        f"run_name={name}",
        f"grpo.steps={steps}",
        "grpo.prompts_per_step=4",
        "grpo.mini_batches=2",  # each rank: its 2 groups in 2 mini-batches, 2 optimizer steps
        "grpo.group_size=4",
        "data.n_train=16",
        "data.template=chat",
        "sampling.max_new_tokens=8",
        "checkpoint.every_steps=2",
        "threads=1",
        "progress=false",
        *extra,
    ]
    env = {"OMP_NUM_THREADS": "1", "PATH": str(Path(sys.executable).parent)}
    if "PYTHONPATH" in os.environ:  # a checkout's sources ahead of the installed package
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp2"])
def test_rl_under_torchrun_completes_and_resumes(tmp_path, model_dir, fsdp):
    res = torchrun_rl(model_dir, tmp_path, "tr", 4, f"dist.fsdp={str(fsdp).lower()}")
    assert res.returncode == 0, res.stderr[-3000:]
    rows = read_jsonl(tmp_path / "tr" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2, 3]  # one writer: no duplicated rows
    assert all(r["optimizer_steps"] == 2 for r in rows)  # the same split on both ranks
    assert (tmp_path / "tr" / "checkpoint" / "model.safetensors").exists()
    res = torchrun_rl(model_dir, tmp_path, "tr", 6, f"dist.fsdp={str(fsdp).lower()}", "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert [r["step"] for r in read_jsonl(tmp_path / "tr" / "metrics.jsonl")] == list(range(6))


@pytest.mark.slow
def test_a_failure_on_one_rank_stops_every_rank(tmp_path, model_dir):
    mp.spawn(
        W.rank_failure_worker,
        args=(2, str(tmp_path / "store"), str(tmp_path), str(model_dir)),
        nprocs=2,
        join=True,
    )
    rank0 = (tmp_path / "rank0.txt").read_text()
    rank1 = (tmp_path / "rank1.txt").read_text()
    assert rank1.startswith("RewardErrorRateExceeded") and "verifier crashed" in rank1
    assert rank0.startswith("RankFailed: rank 1 failed") and "verifier crashed" in rank0
