"""Every stage that samples gets its generator from `engines.generators.build_generator`.

The `built` fixture wraps each builder of the factory's registry in a spy that records which
engine was chosen, with which keywords, and what it returned; then each consumer makes a tiny run.
A consumer that constructed its generator itself would leave the record empty.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from r1lab.config import load_config
from r1lab.engines.generators import GENERATORS, EndpointConfig
from r1lab.eval.run import EvalRunConfig, run_eval
from r1lab.pipelines import distill, rejection_sampling
from r1lab.pipelines.common import task_examples
from r1lab.pipelines.distill_config import DistillConfig
from r1lab.pipelines.grpo_policy import build_policy
from r1lab.pipelines.heldout import evaluate_model
from r1lab.pipelines.r1_common import evaluate_checkpoint
from r1lab.pipelines.rl_config import DataConfig, EvalConfig, RLConfig
from r1lab.pipelines.rs_config import RSConfig, RSSamplingConfig
from r1lab.types import Rollout

sys.path.insert(0, str(Path(__file__).parent))
from test_grpo import char_tokenizer, plain_qwen2  # noqa: E402


@pytest.fixture()
def built(monkeypatch):
    """(calls, fakes): calls gets (engine, keywords, generator) per build; a builder named in
    `fakes` returns ``fakes[name](**keywords)`` instead of the real generator."""
    calls: list[tuple[str, dict, object]] = []
    fakes: dict = {}
    for name in GENERATORS.names():
        real = GENERATORS.get(name)

        def spy(*, _name=name, _real=real, **kw):
            gen = fakes[_name](**kw) if _name in fakes else _real(**kw)
            calls.append((_name, kw, gen))
            return gen

        monkeypatch.setitem(GENERATORS._items, name, spy)
    return calls, fakes


class Answering:
    """An endpoint stand-in: answers each question (the prompt) correctly, chat style."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers, self.calls = answers, 0

    def generate(self, prompts, n, sampling):
        self.calls += 1
        return [
            Rollout(
                i, j, p, [], [], f"<think>\nsum\n</think>\n\\boxed{{{self.answers[p]}}}", [], "stop"
            )
            for i, p in enumerate(prompts)
            for j in range(n)
        ]


def test_rl_policy_samples_with_the_factory_generator(built, tmp_path):
    calls, _ = built
    tok = char_tokenizer()
    cfg = load_config(RLConfig, "r1_zero_tiny", ["sampling.batch_size=7"])
    policy = build_policy(cfg, plain_qwen2(tok), tok, tmp_path)
    [(engine, kw, gen)] = calls
    assert engine == "hf" and kw["rollout"] is cfg.rollout and kw["batch_size"] == 7
    assert policy.generator is gen and gen.model is policy.model


def test_rejection_sampling_from_a_checkpoint_uses_the_factory(
    built, tmp_path, tiny_model, tiny_tokenizer
):
    calls, _ = built
    torch.set_num_threads(1)
    cfg = RSConfig(
        data=DataConfig(n_train=2),
        k=2,
        min_score=0.0,
        progress=False,
        sampling=RSSamplingConfig(max_new_tokens=4, batch_size=3),
    )
    res = rejection_sampling.run(
        cfg, run_dir=tmp_path, model=tiny_model, tokenizer=tiny_tokenizer, log=lambda *_: None
    )
    [(engine, kw, gen)] = calls
    assert engine == "hf" and kw["rollout"] is cfg.rollout and kw["batch_size"] == 3
    assert kw["workdir"] == tmp_path / "vllm_engine" and gen.model is tiny_model
    assert res.stats["samples"] == 4  # the run sampled with it


def test_distillation_samples_its_teacher_endpoint_through_the_factory(built, tmp_path):
    calls, fakes = built
    cfg = load_config(
        DistillConfig,
        None,
        [
            "sample.teacher.base_url=http://127.0.0.1:9/v1",
            "sample.teacher.model=teacher",
            "data.n_train=3",
            "sample.n_prompts=3",
            "sample.k=2",
            "sample.filters=[]",
            "progress=false",
        ],
    )
    answers = {ex.question: ex.answer for ex in task_examples(cfg.data, "train")}
    fakes["endpoint"] = lambda **_: Answering(answers)
    out = distill.sample_traces(cfg, tmp_path, log=lambda *_: None)
    [(engine, kw, gen)] = calls
    assert engine == "endpoint" and kw["endpoint"] == cfg.sample.teacher and kw["mode"] == "chat"
    assert gen.calls > 0 and out["rows"] == 3


def test_eval_builds_local_and_endpoint_backends_with_the_factory(
    built, tmp_path, tiny_model, tiny_tokenizer
):
    calls, fakes = built
    model_dir = tmp_path / "m"
    tiny_model.save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)
    src = tmp_path / "probs.jsonl"
    src.write_text(json.dumps({"id": "p0", "question": "Compute 1 + 1", "answer": "2"}) + "\n")
    common = dict(source=str(src), verifier="number", k=1, max_new_tokens=4, progress=False)
    run_eval(
        EvalRunConfig(
            model=str(model_dir),
            batch_size=5,
            run_name="a",
            output_dir=str(tmp_path),
            template="r1_zero",
            **common,
        ),
        log=lambda *_: None,
    )
    fakes["endpoint"] = lambda **_: Answering({"Compute 1 + 1": "2"})
    out = run_eval(
        EvalRunConfig(
            endpoint="http://127.0.0.1:9/v1",
            endpoint_model="served",
            endpoint_mode="chat",
            api_key_env="R1LAB_TEST_UNSET_KEY",
            instruction="",
            run_name="b",
            output_dir=str(tmp_path),
            **common,
        ),
        log=lambda *_: None,
    )
    (local, kw_local, _), (remote, kw_remote, gen) = calls
    assert local == "hf" and kw_local["batch_size"] == 5
    assert remote == "endpoint" and kw_remote["mode"] == "chat"
    assert kw_remote["endpoint"] == EndpointConfig(
        "http://127.0.0.1:9/v1", "served", concurrency=8, timeout_s=600.0, max_retries=5
    )  # an unset api_key_env is no error for eval: the key is optional
    assert gen.calls == 1 and out["results"]["custom"].metrics["pass@1"] == 1.0


def test_heldout_and_stage_evaluations_use_the_factory(built, tmp_path, tiny_model, tiny_tokenizer):
    calls, _ = built
    cfg = load_config(
        RLConfig, None, ["sampling.batch_size=6", "eval.k=1", "eval.max_new_tokens=4"]
    )
    examples = task_examples(DataConfig(n_test=2), "test")
    evaluate_model(cfg, tiny_model, tiny_tokenizer, examples, tmp_path / "h.jsonl", seed=0)
    model_dir = tmp_path / "ckpt"
    tiny_model.save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)
    evaluate_checkpoint(
        model_dir,
        examples,
        template="r1_zero",
        ecfg=EvalConfig(k=1, max_new_tokens=4),
        stop=(),
        out_path=tmp_path / "s.jsonl",
        batch_size=5,
        progress=False,
    )
    assert [(engine, kw["batch_size"]) for engine, kw, _ in calls] == [("hf", 6), ("hf", 5)]
