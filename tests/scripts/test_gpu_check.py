"""scripts/gpu_check.sh on a machine without a GPU: argument handling and the commands it runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import gpu_check  # noqa: E402


def sh(*args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_dry_run_lists_each_check_on_cuda_in_bf16(tmp_path):
    r = sh("--dry-run", "--out", str(tmp_path), "--steps", "7")
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(": ", 1) for line in r.stdout.strip().splitlines())
    assert list(lines) == ["demo", "sft", "lora", "nccl"]
    for cmd in lines.values():
        assert "model.device=cuda" in cmd and "model.dtype=bfloat16" in cmd
    assert "grpo.steps=7" in lines["demo"]
    assert "lora.enabled=true" in lines["lora"]
    assert "torch.distributed.run --nproc_per_node 1" in lines["nccl"]
    assert "dist.backend=nccl" in lines["nccl"]
    assert f"data.train_file={tmp_path / 'sft.jsonl'}" in lines["sft"]


def test_only_selects_checks():
    r = sh("--dry-run", "--only", "sft,nccl")
    assert r.returncode == 0, r.stderr
    assert [line.split(":")[0] for line in r.stdout.strip().splitlines()] == ["sft", "nccl"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--only", "demo,warp"], "unknown check(s) ['warp']"),
        (["--only", ""], "unknown check(s) (none given)"),
        (["--steps", "0"], "--steps must be a positive integer"),
        (["--steps", "x"], "invalid int value"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(args, message):
    r = sh(*args, "--dry-run")
    assert r.returncode == 2
    assert message in r.stderr


def test_without_a_gpu_it_says_so_in_one_line(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible: the check would run")
    r = sh("--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "gpu_check: no CUDA GPU visible (torch.cuda.is_available() is False)"
    )
    assert not (tmp_path / "out").exists()  # nothing written before the GPU is known


def test_sft_rows_are_chat_rows_the_sft_loader_accepts():
    from r1lab.data.chat import row_to_conversation

    rows = gpu_check.sft_rows(8)
    convs = [row_to_conversation(r, f"row {i}") for i, r in enumerate(rows)]
    assert [m["role"] for m in convs[0]] == ["user", "assistant"]
    assert convs[0][0]["content"] == "What is 3 + 5?"
    assert convs[0][1]["content"] == "<think>3 + 5 = 8</think><answer>8</answer>"
