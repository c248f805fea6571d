"""The evaluation runner: grading, metrics bookkeeping, JSONL output, chunk seeds and resume.

Most tests use `ReplayGenerator` (tests/eval/eval_replay.py), a real `Generator` that replays
scripted completions so every metric can be computed by hand; the last tests run `HFGenerator`
on a tiny random model for determinism and resume with real sampling.
"""

from __future__ import annotations

import json
import math

import pytest
from eval_replay import TRUNCATE, ReplayGenerator

from r1lab.errors import ConfigError, DataError
from r1lab.eval.runner import evaluate
from r1lab.eval.store import meta_path
from r1lab.rewards.combine import RewardComponent
from r1lab.types import Example, SamplingParams
from r1lab.utils.jsonl import read_jsonl

EXAMPLES = [
    Example(id="p0", question="Compute 5 + 7", answer="12", verifier="number"),
    Example(id="p1", question="Compute 3 + 4", answer="7", verifier="number"),
    Example(id="p2", question="Compute 90 + 10", answer="100", verifier="number"),
]
PROMPTS = [f"Q: {ex.question}. A:" for ex in EXAMPLES]
SCRIPT = {
    PROMPTS[0]: [
        "<think> a </think> <answer> 12 </answer>",  # correct, format
        "<think> b </think> <answer> 13 </answer>",  # wrong, format
        "The answer is \\boxed{12.0}",  # correct (12.0 == 12), no format
        "<think> x </think> <answer> 13 </answer>" + TRUNCATE,  # wrong, format, truncated
    ],
    PROMPTS[1]: [
        "<answer> 8 </answer>",
        "<answer> 8 </answer>",
        "<answer> 7 </answer>",
        "no answer here",
    ],
    PROMPTS[2]: ["<think> t </think> <answer> 99 </answer>"] * 4,
}
SP = SamplingParams(temperature=0.6, top_p=0.95, seed=0)


def run(gen=None, **kw):
    kw.setdefault("progress", False)
    return evaluate(
        gen or ReplayGenerator(SCRIPT), EXAMPLES, prompts=PROMPTS, k=4, sampling=SP, **kw
    )


def test_metrics_by_hand():
    m = run().metrics
    assert m["pass@1"] == pytest.approx((2 / 4 + 1 / 4 + 0) / 3, abs=1e-9)
    assert m["pass@1_se"] == pytest.approx(0.25 / math.sqrt(3), abs=1e-6)
    # pass@2: p0 1 - C(2,2)/C(4,2) = 5/6; p1 1 - C(3,2)/C(4,2) = 1/2; p2 0
    assert m["pass@2"] == pytest.approx((5 / 6 + 0.5) / 3, abs=1e-6)
    assert m["pass@4"] == pytest.approx(2 / 3, abs=1e-6)
    # p0: correct group {12, 12.0} ties with {13, 13}, the correct one occurs first -> right;
    # p1: "8" x2 beats "7"; p2: all wrong
    assert m["cons@4"] == pytest.approx(1 / 3, abs=1e-9)
    assert m["format_rate"] == pytest.approx(7 / 12, abs=1e-9)
    assert m["truncation_rate"] == pytest.approx(1 / 12, abs=1e-9)
    assert m["no_answer_rate"] == pytest.approx(1 / 12, abs=1e-9)
    assert m["mean_response_tokens"] == pytest.approx(58 / 12, abs=1e-9)
    assert (m["num_problems"], m["num_samples"], m["k"]) == (3, 12, 4)
    assert m["grading_errors"] == 0
    lo, hi = m["pass@1_ci"]
    assert 0.0 <= lo <= m["pass@1"] <= hi <= 0.5
    assert m["wall_seconds"] >= 0


def test_sample_rows_and_problem_rows():
    res = run()
    s = res.samples[2]
    assert (s["problem_id"], s["sample_index"], s["prompt"]) == ("p0", 2, PROMPTS[0])
    assert (s["extracted"], s["correct"], s["format"]) == ("12.0", True, 0.0)
    assert (s["finish_reason"], s["num_tokens"], s["gold"]) == ("stop", 4, "12")
    assert res.samples[3]["finish_reason"] == "length"
    assert res.samples[7]["extracted"] is None and not res.samples[7]["correct"]
    p = res.problems
    assert [x["num_correct"] for x in p] == [2, 1, 0]
    assert [x["majority_answer"] for x in p] == ["12", "8", "99"]
    assert [x["majority_correct"] for x in p] == [True, False, False]


def test_reward_spec_and_configurable_format():
    spec = [RewardComponent("accuracy", 1.0), RewardComponent("format", 0.5)]
    m = run(reward_spec=spec).metrics
    assert m["reward_mean"] == pytest.approx((3 + 0.5 * 7) / 12, abs=1e-9)
    m = run(format_reward=None).metrics
    assert "format_rate" not in m
    with pytest.raises(ConfigError, match="unknown reward 'nope'"):
        run(format_reward="nope")


def test_chunks_and_seeds():
    gen = ReplayGenerator(SCRIPT, batch_size=8)  # 8 // k=4 -> 2 problems per call
    run(gen)
    assert [len(c[0]) for c in gen.calls] == [2, 1]
    assert [c[2].seed for c in gen.calls] == [0, 2]
    assert all(c[2].temperature == 0.6 and c[2].top_p == 0.95 for c in gen.calls)
    gen = ReplayGenerator(SCRIPT)
    run(gen, chunk_size=1)
    assert [c[0] for c in gen.calls] == [[p] for p in PROMPTS]


def test_out_path_jsonl(tmp_path):
    out = tmp_path / "eval.jsonl"
    res = run(out_path=out)
    assert read_jsonl(out) == res.samples
    meta = json.loads(meta_path(out).read_text())
    assert meta["k"] == 4 and meta["sampling"]["temperature"] == 0.6


def test_bad_inputs_fail_clearly():
    with pytest.raises(ConfigError, match="2 prompts for 3 examples"):
        evaluate(ReplayGenerator(SCRIPT), EXAMPLES, prompts=PROMPTS[:2], k=4, progress=False)
    bad = [Example(id="m", question="q", answer="1", verifier="no_such_verifier")]
    with pytest.raises(ConfigError, match="no_such_verifier.*known: .*number"):
        evaluate(ReplayGenerator({}), bad, prompts=["q"], progress=False)

    class Shuffled(ReplayGenerator):
        def generate(self, prompts, n, sampling):
            return list(reversed(super().generate(prompts, n, sampling)))

    with pytest.raises(DataError, match="prompt-major"):
        run(Shuffled(SCRIPT))


def test_grading_errors_are_counted_not_raised():
    bad = [Example(id="g", question="q", answer="not a number", verifier="number")]
    res = evaluate(
        ReplayGenerator({"q": ["<answer> 3 </answer>"] * 2}),
        bad,
        prompts=["q"],
        k=2,
        progress=False,
    )
    assert res.metrics["grading_errors"] == 2 and res.metrics["pass@1"] == 0.0
    assert "not a number" in res.samples[0]["errors"]["accuracy"]


def test_resume_does_not_repeat_finished_samples(tmp_path):
    out = tmp_path / "eval.jsonl"
    full = run(chunk_size=1)
    with pytest.raises(RuntimeError, match="interrupted"):
        run(ReplayGenerator(SCRIPT, fail_after=1), out_path=out, chunk_size=1)
    assert len(read_jsonl(out)) == 4  # the first problem finished
    with out.open("a") as f:  # a torn last line from a killed writer
        f.write('{"problem_index": 1, "sample_ind')
    gen = ReplayGenerator(SCRIPT)
    res = run(gen, out_path=out, chunk_size=1, resume=True)
    assert [c[0] for c in gen.calls] == [[PROMPTS[1]], [PROMPTS[2]]]
    assert res.metrics["resumed_problems"] == 1
    assert res.samples == full.samples
    assert read_jsonl(out) == full.samples
    for key in ("pass@1", "pass@2", "cons@4", "format_rate"):
        assert res.metrics[key] == full.metrics[key]
    # other chunk boundaries on resume: still only the missing problems are generated, and a
    # problem with only some of its samples on disk is generated again
    out2 = tmp_path / "eval2.jsonl"
    with pytest.raises(RuntimeError):
        run(ReplayGenerator(SCRIPT, fail_after=1), out_path=out2, chunk_size=1)
    with out2.open("a") as f:
        for row in full.samples[4:6]:  # 2 of problem 1's 4 samples
            f.write(json.dumps(row) + "\n")
    gen = ReplayGenerator(SCRIPT)
    res = run(gen, out_path=out2, chunk_size=3, resume=True)
    assert [c[0] for c in gen.calls] == [[PROMPTS[1], PROMPTS[2]]]
    assert len(read_jsonl(out2)) == 12 and res.metrics["pass@1"] == full.metrics["pass@1"]
    # a finished file resumes with no generation at all
    gen = ReplayGenerator(SCRIPT)
    assert run(gen, out_path=out, resume=True).samples == full.samples and gen.calls == []
    # rows of unknown provenance are refused
    meta_path(out2).unlink()
    with pytest.raises(ConfigError, match="settings are unknown"):
        run(out_path=out2, resume=True)
    # different settings are refused, not mixed
    with pytest.raises(ConfigError, match="differs in: sampling"):
        evaluate(
            ReplayGenerator(SCRIPT),
            EXAMPLES,
            prompts=PROMPTS,
            k=4,
            progress=False,
            sampling=SamplingParams(temperature=1.0, seed=0),
            out_path=out,
            resume=True,
        )


def _hf_examples(n: int = 4) -> list[Example]:
    from r1lab.data.tasks import generate

    return generate("arith", n, split="test", seed=0, difficulty=0)


def test_hf_generator_deterministic_for_a_seed(tiny_model, tiny_tokenizer):
    from r1lab.engines.hf import HFGenerator

    exs = _hf_examples()
    gen = HFGenerator(tiny_model, tiny_tokenizer, batch_size=4)
    prompts = [f"{ex.question}. Assistant:" for ex in exs]

    def once(seed):
        sp = SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=8, seed=seed)
        return evaluate(gen, exs, prompts=prompts, k=2, sampling=sp, progress=False)

    a, b, c = once(1), once(1), once(2)
    assert [s["completion"] for s in a.samples] == [s["completion"] for s in b.samples]
    assert a.metrics["pass@1"] == b.metrics["pass@1"]
    assert [s["completion"] for s in a.samples] != [s["completion"] for s in c.samples]
    assert all(s["num_tokens"] <= 8 for s in a.samples)
    trunc = sum(s["finish_reason"] == "length" for s in a.samples) / len(a.samples)
    assert a.metrics["truncation_rate"] == pytest.approx(trunc)


def test_hf_generator_resume_equals_uninterrupted(tiny_model, tiny_tokenizer, tmp_path):
    from r1lab.engines.hf import HFGenerator

    exs = _hf_examples()
    prompts = [f"{ex.question}. Assistant:" for ex in exs]
    sp = SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=8, seed=3)
    gen = HFGenerator(tiny_model, tiny_tokenizer, batch_size=4)
    kw = dict(prompts=prompts, k=2, sampling=sp, progress=False, chunk_size=1)
    full = evaluate(gen, exs, **kw)

    class Interrupted:
        def __init__(self, inner, after):
            self.inner, self.after, self.calls = inner, after, 0

        def generate(self, prompts, n, sampling):
            if self.calls >= self.after:
                raise KeyboardInterrupt
            self.calls += 1
            return self.inner.generate(prompts, n, sampling)

    out = tmp_path / "hf.jsonl"
    with pytest.raises(KeyboardInterrupt):
        evaluate(Interrupted(gen, 2), exs, out_path=out, **kw)
    resumed_gen = Interrupted(gen, 99)
    res = evaluate(resumed_gen, exs, out_path=out, resume=True, **kw)
    assert resumed_gen.calls == 2
    assert [s["completion"] for s in res.samples] == [s["completion"] for s in full.samples]
