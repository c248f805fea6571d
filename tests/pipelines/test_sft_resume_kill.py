"""SFT resumes exactly after ``kill -9``, as RL does (tests/pipelines/test_resume.py): a run
SIGKILLed after a mid-run checkpoint and started again logs the same metrics, step for step, and
ends with bit-identical weights to an uninterrupted run (CPU, threads=1). Every run is a fresh
process, as a user's would be (the test process's own torch state never enters the figures)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

from r1lab.data.general_chat import general_sft_rows
from r1lab.models.tiny import build_model
from r1lab.utils.checkpoint import latest_checkpoint, load_checkpoint
from r1lab.utils.jsonl import read_jsonl

SLOW_CLI = """
import sys, time
from r1lab.pipelines import sft
fast = sft.nll_loss
sft.nll_loss = lambda *a, **kw: time.sleep(0.3) or fast(*a, **kw)
from r1lab.cli import main
sys.exit(main(sys.argv[1:]))
"""
COUNTING_CLI = """
import sys
from r1lab.pipelines import sft
real, calls = sft.nll_loss, []
sft.nll_loss = lambda *a, **kw: calls.append(1) or real(*a, **kw)
from r1lab.cli import main
code = main(sys.argv[1:])
print(f"NLL_CALLS {len(calls)}")
sys.exit(code)
"""


def counted_run(args: list[str]) -> int:
    """Run ``r1lab`` in a fresh process; the number of training-loss calls it made."""
    out = subprocess.run(
        [sys.executable, "-c", COUNTING_CLI, *args], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.rsplit("NLL_CALLS ", 1)[1].split()[0])


def sft_args(model_dir, data, out, name) -> list[str]:
    return [
        "sft",
        f"model.path={model_dir}",
        f"data.train_file={data}",
        "data.eval_fraction=0.1",
        "train.epochs=2",
        "train.batch_tokens=400",
        "train.lr=0.005",
        "train.save_every=2",
        "train.keep_checkpoints=2",
        f"output_dir={out}",
        f"run_name={name}",
        "threads=1",
        "progress=false",
    ]


def comparable(run) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "tokens_per_second"} for r in read_jsonl(run)]


def test_sft_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path, tiny_tokenizer):
    model_dir = tmp_path / "model"
    build_model("test", tiny_tokenizer, seed=0).save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in general_sft_rows(40)))
    counted_run(sft_args(model_dir, data, tmp_path, "full"))

    cmd = [sys.executable, "-c", SLOW_CLI, *sft_args(model_dir, data, tmp_path, "cut")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpts = tmp_path / "cut" / "checkpoints"
    deadline = time.time() + 120
    while latest_checkpoint(ckpts) is None and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = load_checkpoint(latest_checkpoint(ckpts)).steps_done
    full = comparable(tmp_path / "full" / "metrics.jsonl")
    assert 2 <= done < len(full) - 1

    steps_run = counted_run(sft_args(model_dir, data, tmp_path, "cut"))
    assert steps_run == len(full) - 1 - done  # it resumed after `done`, not from scratch
    cut = comparable(tmp_path / "cut" / "metrics.jsonl")
    assert [r["step"] for r in cut] == list(range(len(full)))  # none missing, none twice
    assert cut == full  # equal floats, step for step
    w_full = load_file(tmp_path / "full" / "checkpoint" / "model.safetensors")
    w_cut = load_file(tmp_path / "cut" / "checkpoint" / "model.safetensors")
    assert w_full.keys() == w_cut.keys()
    assert all(torch.equal(w_full[k], w_cut[k]) for k in w_full)
    w0 = load_file(model_dir / "model.safetensors")
    assert any(not torch.equal(w_full[k], w0[k]) for k in w0)  # training moved the weights
