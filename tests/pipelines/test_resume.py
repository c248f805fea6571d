"""Exact resume: a run SIGKILLed after a mid-run checkpoint and resumed with --resume logs the same
metrics, step for step, and ends with the same weights as an uninterrupted run (CPU, threads=1).
A kill during a checkpoint write leaves the previous checkpoint usable; --resume refuses clearly
when it would train zero steps or when the config changed what training depends on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import Qwen2ForCausalLM

from r1lab.cli import main
from r1lab.utils.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from r1lab.utils.jsonl import read_jsonl

sys.path.insert(0, str(Path(__file__).parent))
from test_grpo import char_tokenizer, plain_qwen2  # noqa: E402

TIMING = ("time/", "elapsed", "tokens_per_second")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("plain")
    tok = char_tokenizer()
    tok.save_pretrained(d)
    torch.manual_seed(0)
    model = plain_qwen2(tok)
    # lowercase letters end a completion too: lengths (and the length reward) vary
    letters = [tok.convert_tokens_to_ids(ch) for ch in "abcdefghijklmnopqrstuvwxyz"]
    model.generation_config.eos_token_id = [tok.eos_token_id, *letters]
    model.save_pretrained(d)
    return d


def rl_args(model_dir, out, name, steps, *extra) -> list[str]:
    return [
        "rl",
        "r1_zero_tiny",
        f"model.path={model_dir}",
        f"output_dir={out}",
        f"run_name={name}",
        f"grpo.steps={steps}",
        "grpo.prompts_per_step=2",
        "grpo.mini_batches=2",
        "grpo.group_size=4",
        "grpo.lr=0.01",
        "data.n_train=16",
        "data.template=chat",
        "sampling.max_new_tokens=8",
        "sampling.stop=[]",
        "rewards=[{name: overlong, params: {max_len: 8, cache_len: 7}}]",
        "checkpoint.every_steps=2",
        "threads=1",
        "progress=false",
        *extra,
    ]


SLOW_CLI = """
import sys, time
from r1lab.pipelines import rl_step
fast = rl_step.sampling_params
rl_step.sampling_params = lambda cfg, step: time.sleep(0.3) or fast(cfg, step)
from r1lab.cli import main
sys.exit(main(sys.argv[1:]))
"""


def comparable(run: Path) -> list[dict]:
    rows = read_jsonl(run / "metrics.jsonl")
    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in rows]


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path, model_dir):
    steps = 8
    assert main(rl_args(model_dir, tmp_path, "full", steps)) == 0

    # the same run with a budget it will not finish, SIGKILLed right after its first checkpoint;
    # each of its steps sleeps 0.3 s (results unchanged) so the kill lands well before step 8
    cmd = [sys.executable, "-c", SLOW_CLI, *rl_args(model_dir, tmp_path, "cut", 10_000)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpts = tmp_path / "cut" / "checkpoints"
    deadline = time.time() + 120
    while latest_checkpoint(ckpts) is None and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = load_checkpoint(latest_checkpoint(ckpts)).steps_done
    assert 2 <= done < steps

    assert main([*rl_args(model_dir, tmp_path, "cut", steps), "--resume"]) == 0
    full, cut = comparable(tmp_path / "full"), comparable(tmp_path / "cut")
    assert [r["step"] for r in cut] == list(range(steps))  # no duplicated, no missing rows
    assert cut == full  # equal floats, step for step
    assert len({r["reward"] for r in full}) > 1 and len({r["loss"] for r in full}) > 1
    samples = [read_jsonl(tmp_path / n / "samples.jsonl") for n in ("full", "cut")]
    assert samples[0] == samples[1]
    w_full = load_file(tmp_path / "full" / "checkpoint" / "model.safetensors")
    w_cut = load_file(tmp_path / "cut" / "checkpoint" / "model.safetensors")
    assert w_full.keys() == w_cut.keys()
    assert all(torch.equal(w_full[k], w_cut[k]) for k in w_full)
    w0 = Qwen2ForCausalLM.from_pretrained(model_dir).state_dict()
    assert any(not torch.equal(w_full[k], w0[k]) for k in w_full)  # training moved the weights

    # resuming a finished run trains zero steps: refused, not silently "done"
    assert main([*rl_args(model_dir, tmp_path, "cut", steps), "--resume"]) == 2
    # a change that alters training is refused; a longer budget is not a change
    changed = [*rl_args(model_dir, tmp_path, "cut", steps + 1, "grpo.lr=0.5"), "--resume"]
    assert main(changed) == 2


def test_resume_errors_are_one_line(tmp_path, model_dir, capsys):
    assert main([*rl_args(model_dir, tmp_path, "none", 2), "--resume"]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(rl_args(model_dir, tmp_path, "short", 2, "lr=1")) == 2  # unknown key: no run
    args = rl_args(model_dir, tmp_path, "short", 2, "checkpoint.every_steps=0")
    assert main(args) == 0
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "already trained 2 of grpo.steps=2" in err, err
    assert main([*rl_args(model_dir, tmp_path, "short", 3, "seed=5"), "--resume"]) == 2
    assert "seed: 0 -> 5" in capsys.readouterr().err


KILL_MID_WRITE = """
import os, signal, sys, torch
from pathlib import Path
from r1lab.utils.checkpoint import save_checkpoint

class DieWhilePickled:
    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)

root = Path(sys.argv[1])
w = {"w": torch.ones(3)}
save_checkpoint(root, 1, model_state=w, optimizer_state={}, state={"cursor": 1})
save_checkpoint(root, 2, model_state=w, optimizer_state={}, state={"bomb": DieWhilePickled()})
"""


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_one(tmp_path):
    root = tmp_path / "checkpoints"
    res = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, str(root)], capture_output=True)
    assert res.returncode == -signal.SIGKILL, res.stderr.decode()
    assert [p.name for p in root.glob(".tmp-*")], "the write was cut in the middle"
    ck = load_checkpoint(latest_checkpoint(root))
    assert ck.steps_done == 1 and ck.state == {"cursor": 1}
    assert torch.equal(ck.model_state["w"], torch.ones(3))
    # the next save clears the torn temporary directory and moves `latest`
    save_checkpoint(root, 3, model_state={"w": torch.zeros(3)}, optimizer_state={}, state={})
    assert not list(root.glob(".tmp-*"))
    assert load_checkpoint(latest_checkpoint(root)).steps_done == 3
