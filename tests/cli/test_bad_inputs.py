"""The bad-input table: every malformed input to the CLI gives exit status 2 and ONE line on stderr
naming the problem, never a traceback, and a config error is reported before any model loads.

The CLI runs in-process (`r1lab.cli.main`); one subprocess case checks the real entry point.
``{d}`` in an argument is the directory of prepared bad files (see `bad_files`). Every config case
also points the model at a path that does not exist, so a missed check would report the model
path (or load a model, which the `model_loads` spy turns into a failure) instead of the key.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from r1lab.cli import main

NO_MODEL = "/nonexistent/r1lab-model"
M = f"model.path={NO_MODEL}"

# (argv, text the one line must contain, CUDA GPUs this machine pretends to have)
CASES = [
    # --- rl: values of the typed config -------------------------------------------------------
    (["rl", "r1_zero_tiny", M, "grpo.lr=-1"], "grpo.lr: expected a number > 0, got -1.0", 0),
    (
        ["rl", "r1_zero_tiny", M, "grpo.group_size=0"],
        "grpo.group_size: expected an integer >= 2",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "grpo.group_size=1"],
        "grpo.group_size: expected an integer >= 2",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "grpo.prompts_per_step=2", "grpo.mini_batches=3"],
        "grpo.mini_batches: expected an integer <= grpo.prompts_per_step (2), got 3",
        0,
    ),
    (["rl", "r1_zero_tiny", M, "grpo.mini_batches=0"], "grpo.mini_batches: expected", 0),
    (
        ["rl", "r1_zero_tiny", M, "grpo.old_logprobs=sampler", "grpo.is_correction=tis"],
        "grpo.is_correction: expected off, or grpo.old_logprobs=trainer",
        0,
    ),
    (["rl", "r1_zero_tiny", M, "grpo.steps=0"], "grpo.steps: expected an integer >= 1, got 0", 0),
    (["rl", "r1_zero_tiny", M, "grpo.steps=-5"], "grpo.steps: expected an integer >= 1, got -5", 0),
    (["rl", "r1_zero_tiny", M, "grpo.prompts_per_step=0"], "grpo.prompts_per_step: expected", 0),
    (["rl", "r1_zero_tiny", M, "grpo.beta=-0.1"], "grpo.beta: expected a number >= 0", 0),
    (["rl", "r1_zero_tiny", M, "grpo.eps_low=-0.2"], "grpo.eps_low: expected a number >= 0", 0),
    (["rl", "r1_zero_tiny", M, "grpo.adv_params={eps: -1}"], "grpo.adv_params.eps: expected", 0),
    (
        ["rl", "r1_zero_tiny", M, "grpo.adv_estimator=nope"],
        "grpo.adv_estimator: expected a regis",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "sampling.top_p=1.5"],
        "sampling.top_p: expected a number in (0, 1]",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "sampling.top_p=0"],
        "sampling.top_p: expected a number in (0, 1]",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "sampling.temperature=0"],
        "sampling.temperature: expected a number > 0",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "sampling.max_new_tokens=0"],
        "sampling.max_new_tokens: expected",
        0,
    ),
    (["rl", "r1_zero_tiny", M, "eval.k=0"], "eval.k: expected an integer >= 1, got 0", 0),
    (
        ["rl", "r1_zero_tiny", M, "rewards=[{name: accuracy, weight: .nan}]"],
        "rewards[0].weight: expected a finite number",
        0,
    ),
    (["rl", "r1_zero_tiny", M, "grpo.lr=.inf"], "grpo.lr: expected a finite number", 0),
    (
        ["rl", "r1_zero_tiny", M, "model.device=cuda"],
        "model.device: expected one of auto, cpu (this machine has no CUDA GPU)",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "model.device=cuda:3"],
        "model.device: expected one of auto, cpu, cuda, cuda:0 (this machine has 1 CUDA GPU), got 'cuda:3'",
        1,
    ),
    (["rl", "r1_zero_tiny", M, "model.device=tpu-ish"], "model.device: expected a torch device", 0),
    (["rl", "r1_zero_tiny", M, "model.dtype=float64"], "model.dtype: expected one of", 0),
    (
        ["rl", "r1_zero_tiny", M, "data.train_file=/nonexistent/train.jsonl"],
        "data.train_file: expected the path of an existing file or hf:NAME[:split] (/nonexistent/train.jsonl is not found)",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "data.train_file={d}/adir"],
        "data.train_file: expected the path of an existing file or hf:NAME[:split] ({d}/adir is a directory)",
        0,
    ),
    # --- rl: overrides anywhere on the line, usage errors -------------------------------------
    (
        ["rl", "r1_zero_tiny", "--no-progress", "grpo.steps=abc"],
        "grpo.steps: expected an integer, got 'abc'",
        0,
    ),
    (
        ["rl", "--no-progress", "r1_zero_tiny", M, "grpo.lr=0"],
        "grpo.lr: expected a number > 0, got 0.0",
        0,
    ),
    (["rl", "r1_zero_tiny", "--bogus-flag"], "unrecognized arguments: --bogus-flag", 0),
    # --- rl: unreadable data, before the model --------------------------------------------------
    (
        ["rl", "r1_zero_tiny", M, "data.train_file={d}/empty.parquet"],
        "{d}/empty.parquet: empty file",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "data.train_file={d}/text.parquet"],
        "{d}/text.parquet: not a readable Parquet file",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "data.train_file={d}/latin1.jsonl"],
        "{d}/latin1.jsonl:2: not UTF-8 text (byte 0xe9 at byte offset 101)",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "data.train_file={d}/parquet_as.jsonl"],
        "{d}/parquet_as.jsonl:1: not UTF-8 text",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "data.train_file={d}/some_bad.jsonl"],
        "{d}/some_bad.jsonl:2: missing 'answer'",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "data.train_file={d}/all_bad.jsonl", "data.skip_bad_rows=true"],
        "{d}/all_bad.jsonl: every row is bad (2); first: {d}/all_bad.jsonl:1: missing 'answer'",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "data.train_file={d}/list_question.jsonl"],
        "{d}/list_question.jsonl:1: 'question' must be text, got list",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "data.train_file={d}/bad_verifier.jsonl"],
        "{d}/bad_verifier.jsonl:1: unknown verifier 'nosuch'; known:",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "data.train_file={d}/empty.jsonl"],
        "{d}/empty.jsonl: empty file",
        0,
    ),
    (
        ["rl", "r1_zero_tiny", M, "data.train_file={d}/not_json.jsonl"],
        "{d}/not_json.jsonl:1: not valid JSON",
        0,
    ),
    # --- sft ------------------------------------------------------------------------------------
    (
        ["sft", M, "data.train_file={d}/some_bad.jsonl", "train.lr=0"],
        "train.lr: expected a number > 0, got 0.0",
        0,
    ),
    (
        ["sft", M, "data.train_file={d}/adir"],
        "data.train_file: expected the path of an existing file",
        0,
    ),
    (
        ["sft", M, "data.train_file={d}/some_bad.jsonl", "train.batch_tokens=0"],
        "train.batch_tokens: expected an integer >= 1",
        0,
    ),
    (
        ["sft", M, "data.train_file={d}/some_bad.jsonl", "data.eval_fraction=1"],
        "data.eval_fraction: expected a number in [0, 1)",
        0,
    ),
    (
        ["sft", M, "data.train_file={d}/some_bad.jsonl", "train.schedule=wavy"],
        "train.schedule: expected one of",
        0,
    ),
    # --- sample (rejection sampling) ------------------------------------------------------------
    (["sample", M, "k=0"], "k: expected an integer >= 1, got 0", 0),
    (["sample", M, "sampling.top_p=0"], "sampling.top_p: expected a number in (0, 1]", 0),
    (["sample", M, "teacher.concurrency=0"], "teacher.concurrency: expected an integer >= 1", 0),
    (["sample", M, "data.train_file={d}/latin1.jsonl"], "{d}/latin1.jsonl:2: not UTF-8 text", 0),
    # --- eval -----------------------------------------------------------------------------------
    (["eval", f"model={NO_MODEL}", "k=0"], "k: expected an integer >= 1, got 0", 0),
    (
        ["eval", f"model={NO_MODEL}", "source=/nonexistent/set.jsonl"],
        "source: expected the path of an existing file",
        0,
    ),
    (["eval", f"model={NO_MODEL}", "temperature=-1"], "temperature: expected a number >= 0", 0),
    (
        ["eval", f"model={NO_MODEL}", "device=cuda:7"],
        "device: expected one of auto, cpu, cuda, cuda:0 (this machine has 1 CUDA GPU)",
        1,
    ),
    (
        ["eval", f"model={NO_MODEL}", "max_new_tokens=0"],
        "max_new_tokens: expected an integer >= 1",
        0,
    ),
    # --- grade ----------------------------------------------------------------------------------
    (["grade", "{d}/nope.jsonl", "{d}/out.jsonl"], "{d}/nope.jsonl", 0),
    (["grade", "{d}/adir", "{d}/out.jsonl"], "{d}/adir: Is a directory", 0),
    (
        ["grade", "{d}/preds.jsonl", "{d}/out.jsonl", "--verifier", "nosuch"],
        "unknown verifier 'nosuch'",
        0,
    ),
    (
        ["grade", "{d}/some_bad.jsonl", "{d}/out.jsonl"],
        "{d}/some_bad.jsonl: no line is usable (line 1: no text field 'prediction'",
        0,
    ),
    (["grade", "{d}/latin1.jsonl", "{d}/out.jsonl"], "not UTF-8 text (byte 0xe9", 0),
    # --- r1 -------------------------------------------------------------------------------------
    (["r1", "r1_tiny", M, "stages=[all_rl]"], "stages: expected a prefix of ['cold_start',", 0),
    (["r1", "r1_tiny", M, "rejection.k=0"], "rejection.k: expected an integer >= 1, got 0", 0),
    (["r1", "r1_tiny", M, "general.ratio=1.0"], "general.ratio: expected a number in [0, 1)", 0),
    (
        ["r1", "r1_tiny", M, "reasoning_rl.grpo.group_size=1"],
        "reasoning_rl.grpo.group_size: expected an integer >= 2",
        0,
    ),
    # --- distill --------------------------------------------------------------------------------
    (
        ["distill", f"student.path={NO_MODEL}", "sft.train.lr=-1"],
        "sft.train.lr: expected a number > 0",
        0,
    ),
    (["distill", "sample.k=0", "--no-progress"], "sample.k: expected an integer >= 1, got 0", 0),
    (
        [
            "distill",
            "sample.teacher.base_url=http://127.0.0.1:9/v1",
            "sample.teacher.concurrency=0",
        ],
        "sample.teacher.concurrency: expected an integer >= 1",
        0,
    ),
    # --- sandbox run ----------------------------------------------------------------------------
    (["sandbox", "run", "{d}/nope.py"], "file not found: {d}/nope.py", 0),
    (["sandbox", "run", "{d}/adir"], "{d}/adir: is a directory", 0),
    (
        ["sandbox", "run", "{d}/latin1.jsonl"],
        "{d}/latin1.jsonl: not UTF-8 text (byte 0xe9 at byte offset 101)",
        0,
    ),
    (["sandbox", "run", "{d}/ok.py", "--timeout", "-1"], "sandbox.timeout_s must be > 0", 0),
    (
        ["sandbox", "run", "{d}/ok.py", "--timeout", "soon"],
        "argument --timeout: invalid float value: 'soon'",
        0,
    ),
    # --- report ---------------------------------------------------------------------------------
    (["report", "{d}/adir"], "{d}/adir/report.json: no report.json", 0),
    (["report", "{d}/not_json_report"], "not_json_report/report.json: not an r1lab report", 0),
    (["report", "{d}/list_report"], "list_report/report.json: not an r1lab report", 0),
    (["report", "{d}/latin1_report"], "latin1_report/report.json: not UTF-8 text (byte 0xe9", 0),
]

GOOD = {"question": "Compute 1 + 1", "answer": "2", "verifier": "number"}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    (d / "adir").mkdir()
    (d / "empty.parquet").write_bytes(b"")
    (d / "empty.jsonl").write_bytes(b"")
    (d / "text.parquet").write_text("question,answer\n1+1,2\n")
    (d / "parquet_as.jsonl").write_bytes(b"PAR1\x15\x04\x15\xf0\x01\x00")
    first = json.dumps({**GOOD, "question": "Compute 11 + 22 + 33 + 44 + 55"}) + "\n"
    assert len(first.encode()) == 84  # the bad byte: line 2 starts at 84, 0xe9 is its 18th
    (d / "latin1.jsonl").write_bytes(first.encode() + b'{"question": "caf\xe9"}\n')
    (d / "not_json.jsonl").write_text("question: 1 + 1\n")
    rows = {
        "some_bad.jsonl": [GOOD, {"question": "Compute 2 + 2"}],
        "all_bad.jsonl": [{"question": "a"}, {"question": "b"}],
        "list_question.jsonl": [{**GOOD, "question": ["Compute", "1 + 1"]}],
        "bad_verifier.jsonl": [{**GOOD, "verifier": "nosuch"}],
        "preds.jsonl": [{"prediction": "2", "answer": "2"}],
    }
    for name, items in rows.items():
        (d / name).write_text("".join(json.dumps(r) + "\n" for r in items))
    (d / "ok.py").write_text("print('hi')\n")
    for name, body in [
        ("not_json_report", b"{"),
        ("list_report", b'{"sections": [1]}'),
        ("latin1_report", b"\xe9"),
    ]:
        (d / name).mkdir()
        (d / name / "report.json").write_bytes(body)
    return d


class ModelLoaded(Exception):
    """Raised by the spy: a model load was attempted (for a config error, too late)."""


@pytest.fixture
def model_loads(monkeypatch) -> list[str]:
    """Every attempt to load or pretrain a model is recorded and fails loudly."""
    import r1lab.models.hf_load as hf_load
    import r1lab.pipelines.pretrain as pretrain

    seen: list[str] = []

    def spy(path, *args, **kwargs):
        seen.append(str(path))
        raise ModelLoaded(path)

    monkeypatch.setattr(hf_load, "load_causal_lm", spy)
    monkeypatch.setattr(pretrain, "ensure_base", spy)
    return seen


def pretend_gpus(monkeypatch, n: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


@pytest.mark.parametrize(
    "argv, needle, gpus", CASES, ids=[f"{i}-{c[0][0]}" for i, c in enumerate(CASES)]
)
def test_bad_input_is_one_line_before_any_model(
    argv, needle, gpus, bad_files, model_loads, monkeypatch, capsys, tmp_path
):
    pretend_gpus(monkeypatch, gpus)
    monkeypatch.chdir(tmp_path)  # nothing a case writes lands in the repository
    argv = [a.replace("{d}", str(bad_files)) for a in argv]
    capsys.readouterr()
    assert main(argv) == 2
    out = capsys.readouterr()
    err = out.err.strip()
    assert err.count("\n") == 0 and err, out.err  # exactly one line
    assert "Traceback" not in err and "Traceback" not in out.out
    assert needle.replace("{d}", str(bad_files)) in err
    assert NO_MODEL not in err  # the bad key is reported, not the (also bad) model path
    assert model_loads == []


def test_the_table_covers_every_command_and_the_listed_inputs():
    commands = {c[0][0] for c in CASES}
    assert commands >= {
        "rl",
        "sft",
        "sample",
        "eval",
        "grade",
        "r1",
        "distill",
        "sandbox",
        "report",
    }
    assert len(CASES) >= 30


@pytest.mark.parametrize(
    "name, needle",
    [
        ("adir", "adir: is a directory; expected a JSONL or Parquet file"),
        ("nope.jsonl", "data file not found"),
        ("empty.parquet", "empty.parquet: empty file"),
        ("text.parquet", "text.parquet: not a readable Parquet file"),
        ("latin1.jsonl", "latin1.jsonl:2: not UTF-8 text (byte 0xe9 at byte offset 101)"),
        ("all_bad.jsonl", "all_bad.jsonl:1: missing 'answer'"),
    ],
)
def test_the_loader_itself_names_the_file(name, needle, bad_files):
    """Sources that reach the loader without a config check (SFT rows, direct calls)."""
    from r1lab.data.loaders import load_examples
    from r1lab.errors import DataError

    with pytest.raises(DataError) as exc:
        load_examples(bad_files / name)
    assert needle in str(exc.value) and str(bad_files) in str(exc.value)


def test_skip_bad_rows_keeps_the_good_rows_and_counts_the_others(bad_files):
    from r1lab.data.loaders import load_examples
    from r1lab.errors import DataError

    path = bad_files / "some_bad.jsonl"
    with pytest.raises(DataError, match=r"some_bad.jsonl:2: missing 'answer'"):
        load_examples(path)
    examples = load_examples(path, skip_bad=True)
    assert [e.question for e in examples] == ["Compute 1 + 1"] and examples.skipped == 1
    assert "some_bad.jsonl:2: missing 'answer'" in examples.first_skipped


def test_the_real_entry_point_prints_one_line_and_exits_2():
    """One subprocess: the console entry point, an override after a flag, no traceback."""
    argv = ["rl", "r1_zero_tiny", "--no-progress", "grpo.steps=abc"]
    src = Path(__file__).resolve().parents[2] / "src"
    proc = subprocess.run(
        [sys.executable, "-m", "r1lab.cli", *argv],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "r1lab: error: grpo.steps: expected an integer, got 'abc'"
