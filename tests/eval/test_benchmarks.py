"""Benchmark loaders, prompts and `run_eval` end to end on a tiny model saved to disk."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from fnmatch import fnmatch
from pathlib import Path

import pytest

import r1lab
from r1lab.errors import ConfigError, DataError
from r1lab.eval.benchmarks import (
    BENCHMARKS,
    MATH_INSTRUCTION,
    PACKAGED,
    benchmark_dir,
    load_benchmark,
    load_source,
    render_prompts,
)
from r1lab.eval.run import EvalRunConfig, run_eval
from r1lab.eval.runner import evaluate
from r1lab.utils.jsonl import JsonlWriter, read_jsonl


def test_benchmark_files_load_with_defaults():
    gsm = load_benchmark("gsm8k", limit=5)
    assert [ex.id for ex in gsm] == [f"gsm8k-test-{i}" for i in range(5)]
    assert gsm[0].answer == "18" and gsm[0].verifier == "number" and gsm[0].task == "gsm8k"
    assert gsm[0].question.startswith("Janet")
    assert len(load_benchmark("aime2024")) == 30 and len(load_benchmark("amc2023")) == 40
    he = load_benchmark("humaneval", limit=1)[0]
    row = he.as_row()
    assert row["entry_point"] == "has_close_elements" and "def check" in row["test"]
    assert BENCHMARKS.get("aime2024").k == 64 and BENCHMARKS.get("math500").k == 4
    assert BENCHMARKS.get("humaneval").extractor is None


def test_every_benchmark_ships_as_package_data(monkeypatch):
    """The files live inside the package, are declared as package data (so a wheel holds them)
    and are byte-identical to the published ones: nothing outside the repository is read."""
    tomllib = pytest.importorskip("tomllib")
    monkeypatch.delenv("R1LAB_BENCHMARKS", raising=False)
    pkg = Path(r1lab.__file__).resolve().parent
    assert benchmark_dir() == PACKAGED and PACKAGED.is_relative_to(pkg)
    pyproject = tomllib.loads((pkg.parents[1] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["r1lab"]
    shipped = sorted(BENCHMARKS.get(n).file for n in BENCHMARKS.names()) + ["README.md"]
    assert sorted(p.name for p in PACKAGED.iterdir()) == sorted(shipped)
    for name in shipped:
        rel = (PACKAGED / name).relative_to(pkg).as_posix()
        assert any(fnmatch(rel, g) for g in globs), f"{rel} is not package data"
    for name in BENCHMARKS.names():
        spec = BENCHMARKS.get(name)
        assert hashlib.sha256((PACKAGED / spec.file).read_bytes()).hexdigest() == spec.sha256
    assert "License" in (PACKAGED / "README.md").read_text()


def test_missing_verifier_is_named_before_generation():
    assert load_benchmark("math500", limit=2)[0].verifier == "math"
    exs = load_benchmark("aime2025", limit=2, verifier="not_yet_written")
    with pytest.raises(ConfigError, match="unknown verifier 'not_yet_written'; known: .*number"):
        evaluate(object(), exs, prompts=["a", "b"], progress=False)  # type: ignore[arg-type]


def test_checksum_mismatch_warns(tmp_path, caplog):
    src = benchmark_dir() / "aime2025.jsonl"
    shutil.copy(src, tmp_path / "aime2025.jsonl")
    with (tmp_path / "aime2025.jsonl").open("a") as f:
        f.write('{"id": "extra", "problem": "1+1", "answer": "2"}\n')
    with caplog.at_level(logging.WARNING):
        exs = load_benchmark("aime2025", data_dir=tmp_path)
    assert len(exs) == 31 and "differs from the published" in caplog.text
    with pytest.raises(DataError, match="R1LAB_BENCHMARKS"):
        benchmark_dir(tmp_path / "nope")


def test_load_source_column_mapping_jsonl_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"task_id": f"t{i}", "prompt": f"Compute {i} + 1", "target": str(i + 1)} for i in range(4)
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "set.parquet")
    with JsonlWriter(tmp_path / "set.jsonl", "w") as w:
        for r in rows:
            w.write(r)
    cols = {"question": "prompt", "answer": "target", "id": "task_id"}
    for name in ("set.parquet", "set.jsonl"):
        exs = load_source(tmp_path / name, columns=cols, verifier="number", limit=3)
        assert [(e.id, e.question, e.answer) for e in exs] == [
            ("t0", "Compute 0 + 1", "1"),
            ("t1", "Compute 1 + 1", "2"),
            ("t2", "Compute 2 + 1", "3"),
        ]
    with pytest.raises(ConfigError, match="unknown column mapping"):
        load_source(tmp_path / "set.jsonl", columns={"solution": "x"})
    with pytest.raises(DataError, match="missing 'question'"):
        load_source(tmp_path / "set.jsonl", verifier="number")


def test_render_prompts(tiny_tokenizer):
    exs = load_benchmark("gsm8k", limit=2)
    plain = render_prompts(exs, template="plain")
    assert plain[0] == exs[0].question + "\n" + MATH_INSTRUCTION
    chat = render_prompts(exs, template="chat", tokenizer=tiny_tokenizer, force_think=True)
    assert chat[0].startswith("<|user|>") and "<|system|>" not in chat[0]
    assert MATH_INSTRUCTION in chat[0] and chat[0].endswith("<|assistant|><think>\n")
    with pytest.raises(ConfigError, match="tokenizer"):
        render_prompts(exs, template="chat")


@pytest.fixture()
def tiny_model_dir(tiny_model, tiny_tokenizer, tmp_path):
    path = tmp_path / "tiny-model"
    tiny_model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def test_run_eval_local_model_end_to_end(tiny_model_dir, tmp_path):
    from r1lab.data.tasks import generate

    exs = generate("arith", 4, split="test", seed=0, difficulty=0)
    with JsonlWriter(tmp_path / "arith.jsonl", "w") as w:
        for ex in exs:
            w.write(ex.as_row())
    cfg = EvalRunConfig(
        model=str(tiny_model_dir),
        source=str(tmp_path / "arith.jsonl"),
        source_name="arith",
        k=2,
        max_new_tokens=8,
        template="r1_zero",
        instruction="",
        format_reward="format",
        output_dir=str(tmp_path / "runs"),
        run_name="e1",
        progress=False,
    )
    out = run_eval(cfg, log=lambda *a: None)
    run_dir = tmp_path / "runs" / "e1"
    res = out["results"]["arith"]
    assert len(read_jsonl(run_dir / "samples_arith.jsonl")) == 8 == len(res.samples)
    assert res.samples[0]["prompt"].startswith("A conversation between User and Assistant.")
    report = json.loads((run_dir / "report.json").read_text())
    m = report["sections"]["arith"]
    for key in (
        "pass@1",
        "pass@2",
        "cons@2",
        "format_rate",
        "trace/len_mean",
        "trace/lang_mix_rate",
    ):
        assert key in m
    assert m["num_problems"] == 4 and m["trace/num_responses"] == 8
    assert (run_dir / "lengths_arith.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "config.yaml").exists() and "| metric | arith |" in (
        run_dir / "report.md"
    ).read_text()
    # running again resumes: nothing is generated, same samples
    again = run_eval(cfg, log=lambda *a: None)["results"]["arith"]
    assert again.metrics["resumed_problems"] == 4
    assert [s["completion"] for s in again.samples] == [s["completion"] for s in res.samples]


def test_run_eval_needs_a_backend_and_a_set(tmp_path):
    with pytest.raises(ConfigError, match="nothing to evaluate"):
        run_eval(EvalRunConfig(model="x"))
    with pytest.raises(ConfigError, match="give model"):
        run_eval(EvalRunConfig(benchmarks=("gsm8k",), limit=1, output_dir=str(tmp_path)))


def test_load_source_through_datasets(tmp_path, monkeypatch):
    """``hf:<local dataset dir>:<split>`` goes through `datasets.load_dataset` (offline)."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "ds"
    data.mkdir()
    with JsonlWriter(data / "test.jsonl", "w") as w:
        w.write({"prompt": "Compute 1 + 1", "target": "2"})
        w.write({"prompt": "Compute 2 + 2", "target": "4"})
    exs = load_source(
        f"hf:{data}:test", columns={"question": "prompt", "answer": "target"}, verifier="number"
    )
    assert [(e.question, e.answer) for e in exs] == [("Compute 1 + 1", "2"), ("Compute 2 + 2", "4")]
