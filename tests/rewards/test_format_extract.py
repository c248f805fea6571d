"""Format rewards (§12.3) and answer-extraction policies."""

from __future__ import annotations

import pytest

from r1lab.rewards import REWARDS, Completion
from r1lab.rewards.extract import CHAINS, extract, extract_named
from r1lab.rewards.format import tag_count_score


def score(name: str, text: str, **params) -> float:
    return REWARDS.get(name)(Completion(text, {}), **params).score


@pytest.mark.parametrize(
    "text,expected",
    [
        ("<think> 2+3=5 </think> <answer> 5 </answer>", 1.0),
        ("\n<think>\nreason\n</think>\n<answer>\n5\n</answer>\n", 1.0),
        ("<think> a </think> <answer> 5 </answer> trailing words", 0.0),
        ("<think> a </think> <think> b </think> <answer> 5 </answer>", 0.0),
        ("<think> a <answer> 4 </answer> </think> <answer> 5 </answer>", 0.0),
        ("<answer> 5 </answer>", 0.0),
        ("<think> a </think>", 0.0),
        ("<think></think><answer>5</answer>", 0.0),  # empty reasoning
        ("<think> \n\t </think> <answer> 5 </answer>", 0.0),  # whitespace-only reasoning
        ("<think> 2+3=5 </think> <answer>\n  \n</answer>", 0.0),  # whitespace-only answer
        ("", 0.0),
    ],
)
def test_r1_zero_format(text, expected):
    assert score("format", text) == expected


@pytest.mark.parametrize(
    "text,params,expected",
    [
        ("<think>\nLet me see. 2+3=5.\n</think>\n\nThe sum is $\\boxed{5}$.", {}, 1.0),
        ("<think>reasoning</think>", {}, 0.0),  # no summary
        ("<think>   </think> The answer is 5.", {}, 0.0),  # no reasoning
        ("Summary first <think>r</think> then more", {}, 0.0),
        ("<think>a</think> b <think>c</think> d", {}, 0.0),
        ("<think>a</think> summary with a stray </think>", {}, 0.0),
        # R1 chat template: the prompt ends with "<think>\n", the completion closes the block
        ("Let me see.\n</think>\n\nThe answer is \\boxed{5}.", {"think_in_prompt": True}, 1.0),
        ("<think>Let me see.</think> 5", {"think_in_prompt": True}, 0.0),
        ("<think>r</think> The answer is 5.", {"require_boxed": True}, 0.0),
        ("<think>r</think> The answer is \\boxed{5}.", {"require_boxed": True}, 1.0),
        (
            "<|begin_reason|>r<|end_reason|> 5",
            {"open_tag": "<|begin_reason|>", "close_tag": "<|end_reason|>"},
            1.0,
        ),
    ],
)
def test_r1_readable_format(text, params, expected):
    assert score("format_r1", text, **params) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("<think>\nx\n</think>\n<answer>\n5\n</answer>", 1.0),
        ("<think>\nonly the think tags\n</think>\n", 0.5),  # §12.3 example
        ("<think>\nx\n</think>\n<answer>\n5</answer>", 0.75),  # answer open tag needs newlines
        ("<think> x </think> <answer> 5 </answer>", 0.0),  # no newlines: no tag string matches
        ("<think>\n<think>\nx\n</think>\n<answer>\n5\n</answer>", 0.75),  # "<think>\n" twice
        ("", 0.0),
    ],
)
def test_tag_count(text, expected):
    assert tag_count_score(text) == expected
    assert score("tag_count", text) == expected


@pytest.mark.parametrize(
    "policy,text,expected",
    [
        ("boxed", r"a \boxed{1} b \boxed{\frac{2}{3}} c", r"\frac{2}{3}"),
        ("boxed", r"\boxed{\{1,2\}}", r"\{1,2\}"),
        ("boxed", r"\boxed{3} then cut \boxed{\frac{1}{", None),  # last box unclosed
        ("boxed", r"\fbox{7}", "7"),
        ("boxed", r"so \boxed 5 .", "5"),
        ("boxed", "no box", None),
        ("boxed_all", r"x = \boxed{2} or x = \boxed{5}", "2, 5"),
        ("answer_tag", "<answer> 1 </answer> <answer> 2 </answer>", "2"),
        ("answer_or_boxed", r"<answer>so \boxed{4}</answer>", "4"),
        ("answer_or_boxed", r"\boxed{4}", "4"),
        ("final_answer_is", "Thus, the final answer is 42. Done", "42"),
        ("final_answer_is", "The answer is: $\\frac{1}{2}$.", "$\\frac{1}{2}$"),
        ("auto", "The answer is 17.", "17"),
        ("auto", r"<answer>9</answer> the answer is 8", "9"),
        ("gsm8k", "She makes 9 * 2 = $18.\n#### 18", "18"),
        ("gsm8k", "#### 1,234\n", "1,234"),
        ("gsm8k", "#### $18 dollars.", "$18"),
        ("gsm8k", "#### 18 - 3 apples", "18 - 3 apples"),
        ("last_number", "we get 3, then 1,250.5 total", "1,250.5"),
    ],
)
def test_extraction_policies(policy, text, expected):
    assert extract(text, policy) == expected


def test_unknown_policy_lists_the_known_ones():
    with pytest.raises(KeyError, match="known: answer_line, answer_or_boxed, answer_tag, auto"):
        extract("x", "nosuch")


@pytest.mark.parametrize(
    "policy,text,expected",
    [
        # an unclosed answer block: a box inside <think> is not its answer
        ("answer_or_boxed", "<think>maybe \\boxed{5}</think>\n<answer>7", None),
        ("answer_or_boxed", "<think>maybe \\boxed{5}</think>\n<answer>so \\boxed{7}", "7"),
        ("answer_or_boxed", "<think>\\boxed{5}</think><answer> \n </answer>", None),  # blank
        ("answer_tag", "<answer>1</answer> then <answer>2", None),  # the last one is cut
        ("auto", "<think>the answer is 5</think>\n<answer>", None),
        ("default", "<think>\\boxed{5}, 5</think>\n<answer>7", "7"),
        ("default", "<think>\\boxed{5}, 5</think>\n<answer>", None),
        ("answer_line", "Q: 1+1?\nA: 2\nQ: 2+2?\nA: 4", "4"),
        ("final_answer_is", "So the number is 1,000.99€", "1,000.99€"),
    ],
)
def test_answer_region_rules(policy, text, expected):
    assert extract(text, policy) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("\\boxed{3} and more", ("3", "answer_or_boxed")),
        ("Adding: 40 + 2 = 42.\n#### 42", ("42", "gsm8k")),
        ("It costs 7,425,000 dollars", ("7425000", "math_verify")),
        ("Two plus two.\nAnswer: four", ("four", "answer_line")),
        ("nothing here", (None, None)),
    ],
)
def test_default_chain_names_the_stage_that_found_the_answer(text, expected):
    assert extract_named(text, "default") == expected


def test_default_chain_order():
    assert CHAINS["default"] == (
        "answer_or_boxed",
        "gsm8k",
        "math_verify",
        "answer_line",
        "final_answer_is",
    )
