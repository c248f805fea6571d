"""Reward-model components: the scorer on a tiny RM built in-process, helpfulness on the summary
only, harmlessness on the whole response, RM rows vs rule rows, and failures that never raise."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import r1lab.data.general_chat  # noqa: F401  (registers the `general` verifier)
from r1lab.engines.reward_model import RewardModelScorer, clear_cache, load_scorer
from r1lab.rewards import preference
from r1lab.rewards.base import Completion
from r1lab.rewards.combine import RewardComponent, score_completions
from r1lab.rewards.preference import summary_of

GENERAL = {"question": "What is the capital of Peru?", "answer": "x", "verifier": "general"}
REASONING = {"question": "2 + 3 = ?", "answer": "5", "verifier": "number"}


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory, tiny_tokenizer):
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_labels=1,
        pad_token_id=tiny_tokenizer.pad_token_id,
    )
    path = tmp_path_factory.mktemp("rm")
    Qwen2ForSequenceClassification(cfg).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return str(path)


def params(rm_dir, **kw):
    return {"model": rm_dir, "max_len": 64, "batch_size": 3, **kw}


def test_scorer_batches_equal_one_by_one_and_are_finite(rm_dir):
    torch.set_num_threads(1)
    scorer = load_scorer(rm_dir, max_len=48, batch_size=4)
    assert load_scorer(rm_dir, max_len=48, batch_size=4) is scorer  # loaded once, then cached
    assert scorer.render_mode == "chat_template"
    prompts = ["Who are you?", "Hi", "What is the opposite of hot?", "x" * 3, "Spell moon."]
    responses = ["I am r1lab-tiny.", "Hello! " * 30, "cold", "", "<think>\nok\n</think>\nnoom"]
    batched = scorer.score(prompts, responses)
    single = [scorer.score([p], [r])[0] for p, r in zip(prompts, responses)]
    assert len(batched) == 5 and all(math.isfinite(x) for x in batched)
    assert batched == pytest.approx(single, abs=1e-5)
    assert len(set(round(x, 6) for x in batched)) > 1  # not a constant


def test_scorer_without_chat_template_joins_prompt_and_response(rm_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(rm_dir)
    tok.chat_template = None
    model = AutoModelForSequenceClassification.from_pretrained(rm_dir, num_labels=1)
    scorer = RewardModelScorer(model, tok, max_len=64)
    assert scorer.render_mode == "plain" and scorer.render("p", "r") == "p\n\nr"
    assert math.isfinite(scorer.score(["p"], ["r"])[0])


def test_summary_split():
    assert summary_of("<think>\nplan\n</think>\nThe answer.") == "The answer."
    assert summary_of("Just an answer.") == "Just an answer."
    assert summary_of("<think>\nnever closed") == ""


def _score(spec, texts, row=GENERAL):
    return score_completions(spec, [Completion(t, row) for t in texts])


def test_helpful_reads_the_summary_harmless_the_whole_response(rm_dir):
    torch.set_num_threads(1)
    spec = [
        RewardComponent("rm_helpful", 1.0, params(rm_dir)),
        RewardComponent("rm_harmless", 1.0, params(rm_dir)),
    ]
    texts = [
        "<think>\nA simple question.\n</think>\nThe capital of Peru is Lima.",
        "<think>\nI want to hurt them.\n</think>\nThe capital of Peru is Lima.",
        "<think>\nA simple question.\n</think>\nI don't know.",
    ]
    table = _score(spec, texts)
    helpful, harmless = table.components["rm_helpful"], table.components["rm_harmless"]
    assert table.num_errors == 0
    assert helpful[0] == pytest.approx(helpful[1], abs=1e-6)  # reasoning changed: same helpfulness
    assert helpful[0] != pytest.approx(helpful[2], abs=1e-6)  # summary changed: it moves
    assert harmless[0] != pytest.approx(harmless[1], abs=1e-6)  # harmlessness sees the reasoning
    scorer = load_scorer(rm_dir, max_len=64, batch_size=3)
    assert helpful[0] == pytest.approx(
        scorer.score([GENERAL["question"]], ["The capital of Peru is Lima."])[0], abs=1e-5
    )
    assert table.results["rm_helpful"][0].extracted == "The capital of Peru is Lima."


def test_only_general_rows_get_rm_scores_and_reasoning_rows_keep_accuracy(rm_dir):
    spec = [
        RewardComponent("accuracy", 0.0),
        RewardComponent("reasoning_accuracy", 1.0),
        RewardComponent("rm_helpful", 1.0, params(rm_dir)),
    ]
    rows = [GENERAL, REASONING, REASONING]
    texts = ["Lima.", "The answer is \\boxed{5}.", "The answer is \\boxed{4}."]
    table = score_completions(spec, [Completion(t, r) for t, r in zip(texts, rows)])
    assert table.num_errors == 0
    rm = table.results["rm_helpful"]
    assert not rm[0].info.get("skipped") and rm[1].info["skipped"] and rm[2].info["skipped"]
    assert table.components["rm_helpful"][1:] == [0.0, 0.0]
    assert table.components["reasoning_accuracy"] == [0.0, 1.0, 0.0]
    assert table.results["reasoning_accuracy"][0].info["skipped"]
    assert table.total == pytest.approx([rm[0].score, 1.0, 0.0])


def test_a_crashing_or_missing_rm_scores_zero_and_is_counted(rm_dir, monkeypatch, tmp_path):
    rows = [Completion("Lima.", GENERAL), Completion("5", REASONING), Completion("Hi", GENERAL)]
    missing = [RewardComponent("rm_harmless", 1.0, params(str(tmp_path / "nope")))]
    table = score_completions(missing, rows)
    assert table.components["rm_harmless"] == [0.0, 0.0, 0.0]
    assert table.errors["rm_harmless"] == 2  # the two general rows; the reasoning row is skipped
    assert "not a Hugging Face model directory" in table.results["rm_harmless"][0].error

    def boom(*_a, **_k):
        raise RuntimeError("RM exploded")

    monkeypatch.setattr(preference, "_scorer", boom)
    spec = [RewardComponent("rm_helpful", 1.0, params(rm_dir))]
    table = score_completions(spec, rows)
    assert table.errors["rm_helpful"] == 2 and table.total == [0.0, 0.0, 0.0]
    assert "RM exploded" in table.results["rm_helpful"][2].error
    assert table.metrics()["reward_errors/rm_helpful"] == 2.0


def test_non_finite_scores_are_errors(rm_dir, monkeypatch):
    scorer = copy.copy(load_scorer(rm_dir, max_len=64, batch_size=3))
    scorer.model = lambda **_: type("Out", (), {"logits": torch.tensor([[float("nan")]])})()
    monkeypatch.setattr(preference, "_scorer", lambda *a: scorer)
    table = _score([RewardComponent("rm_helpful", 1.0, params(rm_dir))], ["Lima."])
    assert table.errors["rm_helpful"] == 1 and "non-finite" in table.results["rm_helpful"][0].error
    clear_cache()
