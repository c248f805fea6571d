"""Nothing a teacher produced is thrown away: every sample is stored with its verdict, extracted
answer and rejection reason; ``sample --regrade`` grades the stored samples again without calling
the generator; the end-of-run line names the most common rejection."""

from __future__ import annotations

import json

import pytest

from r1lab.cli import main
from r1lab.data.filters import FilterSpec
from r1lab.errors import ConfigError
from r1lab.pipelines import rejection_sampling
from r1lab.pipelines.rl_config import DataConfig
from r1lab.pipelines.rs_config import RSConfig
from r1lab.pipelines.rs_regrade import regrade
from r1lab.rewards.combine import RewardComponent
from r1lab.types import Example, Rollout
from r1lab.utils.jsonl import read_jsonl

EXAMPLES = [
    Example("p0", "Compute 2 + 3", "5", "number", "arith", {"difficulty": 1}),
    Example("p1", "Compute 4 + 4", "8", "number", "arith", {"difficulty": 1}),
    Example("p2", "Compute 2 + 3", "5", "number", "arith"),  # same question as p0
]
GOOD = "<think>\n2 + 3 = 5.\n</think>\nThe answer is \\boxed{5}."
SCRIPT = {
    "Compute 2 + 3": [
        GOOD,
        "<think>\n2 + 3 = 6.\n</think>\nThe answer is \\boxed{6}.",  # wrong answer
        "<think>\n2 + 3 = 5\n</think>\nThe answer is five.",  # no box; words, not a number
        "<think>\n```\nprint(2 + 3)\n```\n</think>\nThe answer is \\boxed{5}.",  # code block
        "<think>\nadd: 2 + 3 = 5.\n</think>\nThe answer is 5.",  # no box: no answer (boxed)
        "<think>\nfive.\n</think>\n\\boxed{5}",
    ],
    "Compute 4 + 4": [
        "<think>\n4 + 4 = 8\n</think>\n\\boxed{8}",
        "nonsense",  # no answer
        "<think>\nx\n",  # no answer (and truncated)
        "<think>\n4 and 4 make 8\n</think>\nThe answer is 8.",  # no box: no answer (boxed)
        "\\boxed{8}",
        "\\boxed{8}",  # duplicate
    ],
}
# (id, sample index) -> rejected_by, with the default extractor (answer_or_boxed)
EXPECTED = {
    "p0": [None, "wrong_answer", "no_answer", "filter/code_block", "no_answer", None],
    "p1": [None, "no_answer", "no_answer", "no_answer", None, "duplicate"],
    # p2 repeats p0's question: what p0 kept is a duplicate here
    "p2": ["duplicate", "wrong_answer", "no_answer", "filter/code_block", "no_answer", "duplicate"],
}
AUTO = "rewards=[{name: accuracy, params: {extractor: auto}}]"  # also "the answer is X"


class ScriptedGenerator:
    """A `Generator` whose completions are fixed per question (found in the prompt)."""

    def __init__(self):
        self.calls = 0

    def generate(self, prompts, n, sampling):
        self.calls += 1
        out = []
        for i, p in enumerate(prompts):
            question = next(q for q in SCRIPT if q in p)
            for j in range(n):
                text = SCRIPT[question][j]
                finish = "length" if text.endswith("\n") else "stop"
                out.append(Rollout(i, j, p, [1], [7] * (j + 1), text, [-0.1] * (j + 1), finish))
        return out


def config(**kw) -> RSConfig:
    base = {
        "progress": False,
        "k": 6,
        "prompts_per_chunk": 2,
        "max_per_prompt": 2,
        "data": DataConfig(template="plain"),
        "filters": (FilterSpec("truncated"), FilterSpec("code_block")),
    }
    return RSConfig(**{**base, **kw})


def sample_run(run_dir, cfg=None, log=None):
    return rejection_sampling.run(
        cfg or config(),
        run_dir=run_dir,
        examples=EXAMPLES,
        generator=ScriptedGenerator(),
        log=log or (lambda *_: None),
    )


def test_every_sample_is_stored_with_verdict_answer_and_reason(tmp_path):
    logs = []
    res = sample_run(tmp_path, log=logs.append)
    samples = read_jsonl(res.samples)
    assert res.samples == tmp_path / "samples.jsonl" and len(samples) == 18 == res.stats["samples"]
    got = {}
    for s in samples:
        got.setdefault(s["id"], []).append(s["rejected_by"])
    assert got == EXPECTED
    by_key = {(s["id"], s["sample_index"]): s for s in samples}
    wrong = by_key["p0", 1]
    assert (wrong["verdict"], wrong["extracted"], wrong["kept"]) == ("incorrect", "6", False)
    assert wrong["completion"] == SCRIPT["Compute 2 + 3"][1] and wrong["rewards"] == {
        "accuracy": 0.0
    }
    assert by_key["p1", 1]["extracted"] is None and by_key["p1", 1]["detail"] == "no answer found"
    code = by_key["p0", 3]
    assert code["verdict"] == "correct" and code["extracted"] == "5"
    assert "code block" in code["detail"] and not code["kept"]
    assert by_key["p1", 2]["truncated"] and by_key["p1", 2]["finish_reason"] == "length"
    assert by_key["p0", 0]["meta"] == {"difficulty": 1} and by_key["p0", 0]["answer"] == "5"
    # the kept samples are exactly the dataset's rows
    kept = [(s["id"], s["completion"]) for s in samples if s["kept"]]
    assert kept == [(r["id"], r["completion"]) for r in read_jsonl(res.dataset)]
    assert res.rejections == {
        "no_answer": 7,
        "duplicate": 3,
        "wrong_answer": 2,
        "filter/code_block": 2,
    }
    assert list(res.rejections)[0] == "no_answer"  # most common first
    summary = json.loads((tmp_path / "sample_summary.json").read_text())
    assert summary["rejections"] == res.rejections and summary["samples"] == str(res.samples)
    assert "most common rejection: no answer extracted (no_answer, 7 of 14 rejected)" in logs[-1]


class Exploding:
    def generate(self, *a, **k):
        raise AssertionError("regrade must not generate")


def test_regrade_changes_the_kept_set_without_generating(tmp_path, monkeypatch, capsys):
    first = sample_run(tmp_path / "run")
    before = read_jsonl(first.dataset)
    monkeypatch.setattr(ScriptedGenerator, "generate", Exploding.generate)
    monkeypatch.setattr(rejection_sampling, "make_generator", Exploding.generate)
    argv = ["sample", "--regrade", str(tmp_path / "run"), AUTO, "--no-progress"]
    assert main(argv) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    after = read_jsonl(first.dataset)
    # "The answer is 5." / "The answer is 8." now count: p0 keeps sample 4, p1 sample 3, and
    # p0's sample 5 falls over the cap, so p2's copy of it is no longer a duplicate
    assert [(r["id"], r["provenance"]["sample_index"]) for r in before] == [
        ("p0", 0),
        ("p0", 5),
        ("p1", 0),
        ("p1", 4),
    ]
    assert [(r["id"], r["provenance"]["sample_index"]) for r in after] == [
        ("p0", 0),
        ("p0", 4),
        ("p1", 0),
        ("p1", 3),
        ("p2", 5),
    ]
    samples = {(s["id"], s["sample_index"]): s for s in read_jsonl(first.samples)}
    assert samples["p0", 4]["extracted"] == "5" and samples["p0", 4]["kept"]
    assert samples["p0", 5]["rejected_by"] == "over_cap"
    assert (
        samples["p0", 2]["rejected_by"] == "wrong_answer"
        and samples["p0", 2]["extracted"] == "five"
    )
    assert "kept 5 of 18 samples" in line
    assert "most common rejection: wrong answer (wrong_answer, 4 of 13 rejected)" in line
    assert "every sample with its verdict" in line
    # the same as a fresh run with the new setting, byte for byte
    monkeypatch.undo()
    fresh_cfg = config(rewards=regrade_rewards())
    fresh = sample_run(tmp_path / "fresh", fresh_cfg)
    assert fresh.dataset.read_bytes() == first.dataset.read_bytes()
    assert fresh.samples.read_bytes() == first.samples.read_bytes()
    # the store now carries the regraded config: rerunning the old one there refuses to mix
    with pytest.raises(ConfigError, match="different config"):
        sample_run(tmp_path / "run")


def regrade_rewards():
    return (RewardComponent("accuracy", 1.0, {"extractor": "auto"}),)


def test_regrade_refuses_generation_changes_and_unfinished_runs(tmp_path):
    sample_run(tmp_path / "run")
    with pytest.raises(ConfigError, match="sampling, k decided the generation"):
        regrade(tmp_path / "run", ["k=2", "sampling.temperature=1.0"], log=lambda *_: None)
    state_path = tmp_path / "run" / "rs" / "state.json"
    state = json.loads(state_path.read_text())
    state_path.write_text(json.dumps({**state, "complete": False}))
    with pytest.raises(ConfigError, match="not finished"):
        regrade(tmp_path / "run", [AUTO], log=lambda *_: None)
    assert main(["sample", "--regrade", str(tmp_path / "nowhere")]) == 2
