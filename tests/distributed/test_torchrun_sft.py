"""`r1lab sft` and `r1lab distill` under `torchrun --nproc_per_node 2` (gloo, CPU): the runs
complete, rank 0 alone writes the logs, and distill's student SFT runs on both ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from r1lab.data.general_chat import general_sft_rows
from r1lab.models.tiny import build_model
from r1lab.utils.jsonl import read_jsonl

TORCHRUN = Path(sys.executable).parent / "torchrun"


def torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "r1lab.cli", *args]
    env = {"OMP_NUM_THREADS": "1", "PATH": str(Path(sys.executable).parent)}
    for key in ("PYTHONPATH", "R1LAB_CACHE"):  # a checkout's sources; the tests' cache
        if key in os.environ:
            env[key] = os.environ[key]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    d = tmp_path_factory.mktemp("model")
    build_model("test", tiny_tokenizer, seed=0).save_pretrained(d)
    tiny_tokenizer.save_pretrained(d)
    return d


@pytest.mark.slow
def test_sft_under_torchrun(tmp_path, model_dir):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in general_sft_rows(22)))
    res = torchrun(
        "sft",
        f"model.path={model_dir}",
        f"data.train_file={data}",
        "train.epochs=1",
        "train.batch_tokens=300",
        "train.save_every=2",
        f"output_dir={tmp_path}",
        "run_name=tr",
        "threads=1",
        "--no-progress",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    rows = read_jsonl(tmp_path / "tr" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]  # one writer: no duplicated rows
    assert (tmp_path / "tr" / "checkpoint" / "model.safetensors").exists()


@pytest.mark.slow
def test_distill_under_torchrun(tmp_path, model_dir, tiny_tokenizer):
    teacher = tmp_path / "teacher"
    build_model("test", tiny_tokenizer, seed=1).save_pretrained(teacher)
    tiny_tokenizer.save_pretrained(teacher)
    res = torchrun(
        "distill",
        f"teacher.path={teacher}",
        f"student.path={model_dir}",
        f"output_dir={tmp_path}",
        "run_name=d",
        "threads=1",
        "progress=false",
        "data.n_train=8",
        "data.n_test=3",
        "sample.n_prompts=6",
        "sample.k=2",
        "sample.min_score=0.0",
        "sample.filters=[]",
        "sample.sampling.max_new_tokens=8",
        "sft.train.epochs=1",
        "sft.train.max_steps=2",
        "sft.train.batch_tokens=256",
        "eval.k=2",
        "eval.max_new_tokens=8",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((tmp_path / "d" / "report.json").read_text())
    assert "distilled student" in report["sections"]
    rows = read_jsonl(tmp_path / "d" / "2_sft" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2]
