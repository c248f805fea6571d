"""Language consistency (R1 §2.3.2): expected proportions on English, Chinese and mixed texts."""

from __future__ import annotations

import pytest

from r1lab.errors import ConfigError
from r1lab.rewards import Completion
from r1lab.rewards.combine import RewardComponent, score_completions
from r1lab.rewards.language import chain_of_thought, count_words, language_share

MIXED = "We need the sum. 我们需要求和。 So the answer is five."  # 9 English words, 6 Han


@pytest.mark.parametrize(
    "text,target,share,counts",
    [
        (
            "Let me add the two numbers. Then I check the result again.",
            "en",
            1.0,
            {"en": 11},
        ),  # "I" is a one-letter token: neutral
        ("我们先把两个数相加，然后再检查结果。", "zh", 1.0, {"zh": 16}),
        ("我们先把两个数相加，然后再检查结果。", "en", 0.0, {"zh": 16}),
        (MIXED, "en", 9 / 15, {"en": 9, "zh": 6}),
        (MIXED, "zh", 6 / 15, {"latin": 9, "zh": 6}),
        # a French sentence inside an English chain of thought: 8 + 5 English, 7 French
        (
            "Let me compute the sum of the squares. Ensuite on calcule la somme des carrés. "
            "So the answer is five.",
            "en",
            13 / 20,
            {"en": 13, "fr": 7},
        ),
        # math, code and LaTeX are neutral; so are one-letter variables outside $..$
        (
            "First, note that $x^2 = 4$, so x is 2 or -2. Hence the answer is \\boxed{2}.",
            "en",
            1.0,
            {"en": 10},
        ),
        ("设 $x$ 为未知数, 则 x + 3 = 5, 所以 x = 2。", "zh", 1.0, {"zh": 8}),
        (
            "```python\nprint('bonjour le monde')\n```\n我们计算 `total_sum` 的值",
            "zh",
            1.0,
            {"zh": 6},
        ),
        ("これは日本語です", "ja", 1.0, {"ja": 8}),
        ("이것은 한국어 문장입니다", "ko", 1.0, {"ko": 3}),
        ("Доказательство: we add them", "en", 3 / 4, {"en": 3, "other-script": 1}),
    ],
)
def test_proportions(text, target, share, counts):
    got, got_counts = language_share(text, target)
    assert got == pytest.approx(share, abs=1e-6)
    assert dict(got_counts) == counts


def test_a_sentence_mixing_two_languages_is_scored_by_its_word_shares():
    # one sentence, English then French clauses: 8 English and 7 French words, not 15 of one
    text = "Let me compute the sum of these squares, puis je vérifie le résultat avec soin."
    share, counts = language_share(text, "en")
    assert dict(counts) == {"en": 8, "fr": 7}
    assert share == pytest.approx(8 / 15)
    # short clauses still take their sentence's language ("First", "note that" below)
    share, counts = language_share("First, note that the sum is even, so we halve it.", "en")
    assert share == 1.0 and dict(counts) == {"en": 11}


def test_short_sentences_take_the_language_of_the_whole_text():
    # "Ok." and "Hmm, yes." are too short to identify alone; the whole text is English
    share, counts = language_share("Ok. Hmm, yes. The two numbers add up to seven.", "en")
    assert share == 1.0 and counts["en"] == 10


def test_r1_example_and_the_r_acc_plus_r_lang_sum():
    # §10.2: a chain of thought of 10 words, 8 of them English -> 0.8; correct answer -> 1.8
    text = "<think>Let me add these two numbers and then 检查</think> <answer>5</answer>"
    row = {"answer": "5", "verifier": "number"}
    spec = [RewardComponent("accuracy", 1.0), RewardComponent("language", 1.0, {"target": "en"})]
    table = score_completions(spec, [Completion(text, row)])
    assert table.components["language"] == [pytest.approx(0.8, abs=1e-6)]
    assert table.total == [pytest.approx(1.8, abs=1e-6)]


def test_chain_of_thought_region():
    assert chain_of_thought("<think>a b</think> c") == "a b"
    assert chain_of_thought("pre <think>a b") == "a b"  # never closed
    assert chain_of_thought("a b</think> c", think_in_prompt=True) == "a b"
    assert chain_of_thought("no tags at all") == "no tags at all"
    assert [w for s in count_words("x = 3, y = 4") for w in s] == []


def test_no_words_scores_zero_with_a_reason_and_bad_targets_fail():
    c = Completion("<think> $x^2$ = 4, 2 + 2 </think> 4", {})
    table = score_completions([RewardComponent("language")], [c])
    assert table.components["language"] == [0.0]
    assert table.results["language"][0].info["reason"] == "no words in the chain of thought"
    with pytest.raises(ConfigError, match="target 'xx'"):
        language_share("hello there my friend", "xx")
