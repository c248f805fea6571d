"""Rejection sampling: grading, filters, dedupe, cap, provenance, output formats, and exact
resumption after a crash mid-chunk (env hook) and after a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from r1lab.config import load_config
from r1lab.data.filters import FilterSpec
from r1lab.errors import ConfigError
from r1lab.models.tiny import build_model
from r1lab.pipelines import rejection_sampling
from r1lab.pipelines.rl_config import DataConfig
from r1lab.pipelines.rs_config import RSConfig
from r1lab.pipelines.rs_store import CRASH_ENV
from r1lab.types import Example, Rollout
from r1lab.utils.jsonl import read_jsonl

EXAMPLES = [
    Example("p0", "Compute 2 + 3", "5", "number", "arith"),
    Example("p1", "Compute 4 + 4", "8", "number", "arith"),
    Example("p2", "Compute 2 + 3", "5", "number", "arith"),  # same question as p0
]
GOOD = "<think>\n2 + 3 = 5.\n</think>\nThe answer is \\boxed{5}."
SCRIPT = {
    "Compute 2 + 3": [
        GOOD,
        "<think>\n2 + 3 = 6.\n</think>\nThe answer is \\boxed{6}.",  # incorrect
        GOOD,  # duplicate
        "<think>\n```\nprint(2 + 3)\n```\n</think>\nThe answer is \\boxed{5}.",  # code block
        "<think>\nadd: 2 + 3 = 5.\n</think>\nSo \\boxed{5}.",
        "<think>\nfive.\n</think>\n\\boxed{5}",  # over the cap of 2
    ],
    "Compute 4 + 4": [
        "<think>\n4 + 4 = 8\n</think>\n\\boxed{8}",
        "nonsense",
        "<think>\nx\n",
        "\\boxed{8}",
        "\\boxed{8}",
        "\\boxed{8}",
    ],
}


class ScriptedGenerator:
    """A `Generator` whose completions are fixed per question (last 13 chars of the prompt)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.calls = []

    def generate(self, prompts, n, sampling):
        self.calls.append((list(prompts), n, sampling.seed))
        out = []
        for i, p in enumerate(prompts):
            question = next(q for q in SCRIPT if q in p)
            for j in range(n):
                text = SCRIPT[question][j]
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                out.append(
                    Rollout(
                        i,
                        j,
                        p,
                        [1, 2],
                        ids,
                        text,
                        [-0.1] * len(ids),
                        "length" if text.endswith("\n") else "stop",
                    )
                )
        return out


def scripted_config(**kw) -> RSConfig:
    base = {
        "progress": False,
        "k": 6,
        "prompts_per_chunk": 2,
        "max_per_prompt": 2,
        "data": DataConfig(template="chat"),
        "filters": (FilterSpec("truncated"), FilterSpec("code_block")),
    }
    return RSConfig(**{**base, **kw})


def test_grading_filters_dedupe_cap_and_provenance(tmp_path, tiny_tokenizer):
    gen = ScriptedGenerator(tiny_tokenizer)
    res = rejection_sampling.run(
        scripted_config(),
        run_dir=tmp_path,
        examples=EXAMPLES,
        generator=gen,
        tokenizer=tiny_tokenizer,
    )
    rows = read_jsonl(res.dataset)
    got = [(r["id"], r["completion"], r["provenance"]["sample_index"]) for r in rows]
    assert got == [
        ("p0", GOOD, 0),
        ("p0", SCRIPT["Compute 2 + 3"][4], 4),
        ("p1", SCRIPT["Compute 4 + 4"][0], 0),
        ("p1", "\\boxed{8}", 3),
        # p2 repeats p0's question: GOOD and sample 4 are duplicates of kept rows; 5 is new
        ("p2", SCRIPT["Compute 2 + 3"][5], 5),
    ]
    assert res.stats == {
        "samples": 18,
        "incorrect": 4,
        "kept": 5,
        "duplicate": 6,
        "over_cap": 1,
        "reward_errors": 0,
        "filter/code_block": 2,
    }
    first = rows[0]
    assert first["messages"] == [
        {"role": "user", "content": "Compute 2 + 3"},
        {"role": "assistant", "content": GOOD},
    ]
    assert first["prompt"] == "<|user|>Compute 2 + 3<|end|><|assistant|>"
    prov = first["provenance"]
    assert prov["rewards"] == {"accuracy": 1.0} and prov["chunk"] == 0
    assert prov["sampling"]["temperature"] == 0.7 and prov["finish_reason"] == "stop"
    assert prov["num_tokens"] > 0 and prov["source"] == "rejection_sampling"
    # chunks of 2 prompts, each with its own seed
    assert [(len(p), n, s) for p, n, s in gen.calls] == [(2, 6, 0), (1, 6, 1)]
    assert res.sft_prompt_format == "chat"


def test_parquet_output_and_raw_rows(tmp_path, tiny_tokenizer):
    pq = pytest.importorskip("pyarrow.parquet")
    cfg = scripted_config(output="data.parquet", data=DataConfig(template="r1_zero"))
    res = rejection_sampling.run(
        cfg,
        run_dir=tmp_path,
        examples=EXAMPLES[:2],
        generator=ScriptedGenerator(tiny_tokenizer),
        tokenizer=tiny_tokenizer,
    )
    rows = pq.read_table(res.dataset).to_pylist()
    assert len(rows) == 4 and "messages" not in rows[0]
    assert rows[0]["prompt"].startswith("A conversation between User and Assistant")
    assert rows[0]["provenance"]["rewards"]["accuracy"] == 1.0
    assert res.sft_prompt_format == "raw"


def test_config_errors(tmp_path, tiny_tokenizer):
    gen = ScriptedGenerator(tiny_tokenizer)
    kw = {"examples": EXAMPLES, "generator": gen, "tokenizer": tiny_tokenizer}
    with pytest.raises(ConfigError, match="keep_component"):
        rejection_sampling.run(scripted_config(keep_component="format"), run_dir=tmp_path, **kw)
    rejection_sampling.run(scripted_config(), run_dir=tmp_path / "a", **kw)
    with pytest.raises(ConfigError, match="different config"):
        rejection_sampling.run(scripted_config(max_per_prompt=1), run_dir=tmp_path / "a", **kw)


# --- resumption --------------------------------------------------------------------------------

OVERRIDES = [
    "data.n_train=24",
    "data.tasks=[arith]",
    "data.template=chat",
    "k=3",
    "prompts_per_chunk=2",
    "sampling.max_new_tokens=12",
    "min_score=0.0",
    "filters=[{name: code_block}]",
    "max_per_prompt=2",
    "threads=1",
    "progress=false",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_tokenizer):
    path = tmp_path_factory.mktemp("rs-model")
    build_model("test", tiny_tokenizer, seed=0).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def reference(model_dir, tmp_path_factory):
    """The dataset and the samples file of an uninterrupted run (in-process)."""
    torch.set_num_threads(1)
    cfg = load_config(RSConfig, None, [f"model.path={model_dir}", *OVERRIDES])
    out = tmp_path_factory.mktemp("rs-ref")
    res = rejection_sampling.run(cfg, run_dir=out)
    assert res.rows > 10  # non-trivial: most samples are kept
    assert len(read_jsonl(res.samples)) == 24 * 3  # every sample, kept or not
    return res.dataset.read_bytes(), res.samples.read_bytes()


def cli(model_dir, run_dir, **env):
    args = [
        sys.executable,
        "-m",
        "r1lab.cli",
        "sample",
        f"model.path={model_dir}",
        *OVERRIDES,
        f"output_dir={run_dir.parent}",
        f"run_name={run_dir.name}",
    ]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    return subprocess.Popen(args, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_crash_mid_chunk_then_resume_is_exact(model_dir, reference, tmp_path):
    run_dir = tmp_path / "run"
    proc = cli(model_dir, run_dir, **{CRASH_ENV: "9"})
    out = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 75, out
    state = json.loads((run_dir / "rs" / "state.json").read_text())
    assert 0 < state["chunks_done"] < 12 and not state["complete"]
    assert (run_dir / "rs" / "rows.jsonl").stat().st_size > state["bytes"]  # a torn tail exists
    assert (run_dir / "samples.jsonl").stat().st_size > state["sample_bytes"]  # uncommitted
    assert not (run_dir / "dataset.jsonl").exists()
    assert resume(model_dir, run_dir) == reference


def resume(model_dir, run_dir) -> tuple[bytes, bytes]:
    torch.set_num_threads(1)
    cfg = load_config(RSConfig, None, [f"model.path={model_dir}", *OVERRIDES])
    logs = []
    res = rejection_sampling.run(cfg, run_dir=run_dir, log=logs.append)
    assert any("resuming at chunk" in line for line in logs), logs
    return res.dataset.read_bytes(), res.samples.read_bytes()


def test_sigkill_then_resume_is_exact(model_dir, reference, tmp_path):
    run_dir = tmp_path / "run"
    proc = cli(model_dir, run_dir)
    state_path = run_dir / "rs" / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline:
        if state_path.exists() and json.loads(state_path.read_text())["chunks_done"] >= 2:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    state = json.loads(state_path.read_text())
    assert not state["complete"] and state["chunks_done"] < 12, state
    assert resume(model_dir, run_dir) == reference
    stats = json.loads((run_dir / "sample_summary.json").read_text())["stats"]
    assert stats["samples"] == 24 * 3
