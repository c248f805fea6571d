"""The ``code`` verifier: extraction, stdin/stdout and function-call tests, verdicts, scoring."""

from __future__ import annotations

import json

import pytest

from r1lab.rewards.base import VERIFIERS, Completion
from r1lab.rewards.code import (
    CODE_EXTRACTORS,
    outputs_match,
    score_code_batch,
    verify_code,
)
from r1lab.sandbox import SandboxConfig, SandboxUnavailableError, describe_isolation


@pytest.fixture(scope="module", autouse=True)
def needs_sandbox():
    try:
        describe_isolation(SandboxConfig(isolation="bwrap"))
    except SandboxUnavailableError as exc:
        pytest.skip(f"bubblewrap isolation does not work here: {exc}")


def fence(code: str, tag: str = "python") -> str:
    return f"<think>easy</think>\n```{tag}\n{code}\n```\n"


SUM_ROW = {
    "verifier": "code",
    "tests": [
        {"input": "1 2\n", "output": "3\n"},
        {"input": "10 -4\n", "output": "6"},
        {"input": "0 0\n", "output": "0\n"},
    ],
}
ADD_ROW = {
    "verifier": "code",
    "entry_point": "add",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
}
MBPP_ROW = {
    "verifier": "code",
    "test_list": ["assert sq(2) == 4", "assert sq(3) == 9", "assert sq(-1) == 1"],
}


@pytest.mark.parametrize(
    ("text", "extractor", "expected"),
    [
        ("```python\na = 1\n```\nthen\n```\nb = 2\n```", "last_block", "b = 2\n"),
        ("```python\na = 1\n```\nthen\n```\nb = 2\n```", "first_block", "a = 1\n"),
        ("```py\na = 1\n```\n```text\n3\n```", "last_python_block", "a = 1\n"),
        ("```\nuntagged\n```\n```text\n3\n```", "last_python_block", "untagged\n"),
        ("no code at all", "last_block", None),
        ("```python\nunclosed = True\n", "last_block", None),
        ("def f():\n    return 1\n", "raw", "def f():\n    return 1\n"),
        ("   ", "raw", None),
    ],
)
def test_extraction_table(text, extractor, expected):
    assert CODE_EXTRACTORS.get(extractor)(text) == expected


@pytest.mark.parametrize(
    ("got", "expected", "mode", "match"),
    [
        ("1 2\n3\n", "1  2 3", "tokens", True),
        ("1 2\n3\n", "1 2 4", "tokens", False),
        ("a  \nb\n\n\n", "a\nb", "lines", True),
        ("a b\n", "a  b\n", "lines", False),
        ("x\n", "x", "exact", False),
        ("", "", "tokens", True),
    ],
)
def test_outputs_match_table(got, expected, mode, match):
    assert outputs_match(got, expected, mode) is match


def test_stdin_stdout_tests_all_pass_whitespace_tolerant():
    code = "a, b = map(int, input().split())\nprint(a + b, end='  \\n\\n')"
    res = verify_code(Completion(fence(code), SUM_ROW))
    assert res.score == 1.0 and res.error is None
    assert res.info["verdicts"] == ["pass", "pass", "pass"]
    assert res.extracted == code + "\n"


def test_fraction_versus_all_scoring():
    code = "a, b = map(int, input().split())\nprint(a + b if a > 0 else 99)"
    c = Completion(fence(code), SUM_ROW)
    frac = verify_code(c, score="fraction")
    assert frac.info["verdicts"] == ["pass", "pass", "wrong_answer"]
    assert frac.score == pytest.approx(2 / 3, abs=1e-6)
    assert verify_code(c, score="all").score == 0.0


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        ("raise RuntimeError('x')", "runtime_error"),
        ("while True:\n    pass", "timeout"),
        ("x = bytearray(10**10)", "memory_limit"),
        ("print('z' * 10**8)", "output_limit"),
    ],
)
def test_failure_verdicts(code, verdict):
    row = {"verifier": "code", "tests": [{"input": "", "output": "1"}], "timeout_s": 1.0}
    res = verify_code(Completion(fence(code), row))
    assert res.score == 0.0 and res.info["verdicts"] == [verdict]
    assert res.info["first_failure"]["verdict"] == verdict


def test_function_call_tests_humaneval_style():
    good = verify_code(Completion(fence("def add(a, b):\n    return a + b"), ADD_ROW))
    wrong = verify_code(Completion(fence("def add(a, b):\n    return a - b"), ADD_ROW))
    crash = verify_code(Completion(fence("def add(a, b):\n    return a / 0"), ADD_ROW))
    assert (good.score, good.info["verdicts"]) == (1.0, ["pass"])
    assert (wrong.score, wrong.info["verdicts"]) == (0.0, ["wrong_answer"])
    assert (crash.score, crash.info["verdicts"]) == (0.0, ["runtime_error"])


@pytest.mark.parametrize(
    "code",
    [
        "import sys\ndef add(a, b):\n    return 0\nsys.exit(0)",
        "import os\ndef add(a, b):\n    return 0\nos._exit(0)",
        "def add(a, b):\n    return 0\nprint('R1LAB-TESTS-DONE-' + '0' * 32)\nraise SystemExit(0)",
    ],
)
def test_leaving_before_the_tests_run_does_not_pass(code):
    res = verify_code(Completion(fence(code), ADD_ROW))
    assert res.score == 0.0 and res.info["verdicts"] == ["runtime_error"]


def test_mbpp_style_each_assert_is_a_test():
    c = Completion(fence("def sq(x):\n    return x * x if x > 0 else -x"), MBPP_ROW)
    res = verify_code(c, score="fraction")
    assert res.info["verdicts"] == ["pass", "pass", "pass"]
    half = verify_code(Completion(fence("def sq(x):\n    return 4"), MBPP_ROW), score="fraction")
    assert half.info["verdicts"] == ["pass", "wrong_answer", "wrong_answer"]
    assert half.score == pytest.approx(1 / 3, abs=1e-6)


def test_mbpp_setup_code_and_imports_run_before_the_asserts():
    row = {
        "verifier": "code",
        "test_imports": ["import math"],
        "test_setup_code": "BASE = 10",
        "test_list": ["assert area(1) == math.pi + BASE"],
    }
    good = verify_code(
        Completion(fence("import math\ndef area(r):\n    return math.pi * r * r + 10"), row)
    )
    assert good.info["verdicts"] == ["pass"]


def test_include_prompt_and_tests_as_json_string():
    row = {
        "verifier": "code",
        "problem": "def double(x):\n",
        "tests": json.dumps([{"input": "", "output": "8"}]),
    }
    body = "    return 2 * x\nprint(double(4))"
    assert verify_code(Completion(body, row), code_block="raw", include_prompt=True).score == 1.0
    assert verify_code(Completion(body, row), code_block="raw").score == 0.0  # IndentationError


def test_no_code_block_scores_zero_without_error():
    res = verify_code(Completion("I think the answer is 42.", SUM_ROW))
    assert res.score == 0.0 and res.error is None
    assert res.info["reason"] == "no code block found"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"verifier": "code"}, "no tests"),
        ({"verifier": "code", "tests": [{"input": 1, "output": "1"}]}, "'input' and 'output'"),
        ({"verifier": "code", "test": "def check(c): pass"}, "entry_point"),
        ({"verifier": "code", "tests": "not json"}, "not JSON"),
    ],
)
def test_malformed_rows_record_an_error_and_never_raise(row, message):
    res = verify_code(Completion(fence("print(1)"), row))
    assert res.score == 0.0 and message in res.error


def test_bad_params_fail_loudly():
    from r1lab.errors import ConfigError

    with pytest.raises(ConfigError):
        verify_code(Completion(fence("print(1)"), SUM_ROW), score="most")
    with pytest.raises(ConfigError):
        verify_code(Completion(fence("print(1)"), SUM_ROW), compare="fuzzy")
    res = verify_code(Completion(fence("print(1)"), SUM_ROW), isolation="docker")
    assert res.score == 0.0 and "isolation" in res.error


def test_batch_keeps_order_and_scores_each():
    codes = ["def add(a, b):\n    return a + b", "def add(a, b):\n    return 1", "no block"]
    comps = [Completion(fence(c) if "def" in c else c, ADD_ROW) for c in codes]
    results = score_code_batch(comps)
    assert [r.score for r in results] == [1.0, 0.0, 0.0]


def test_batch_deadline_marks_unfinished_tests_as_errors():
    row = {"verifier": "code", "tests": [{"input": "", "output": "1"}], "timeout_s": 30.0}
    comps = [Completion(fence("import time\ntime.sleep(30)"), row)] * 3
    results = score_code_batch(comps, deadline_s=0.5)
    assert all(r.score == 0.0 and "did not run" in r.error for r in results)


def test_registered_as_code_verifier_and_reachable_through_accuracy():
    from r1lab.rewards.base import REWARDS

    assert VERIFIERS.get("code") is verify_code
    import r1lab.rewards  # noqa: F401  (registers the accuracy component)

    res = REWARDS.get("accuracy")(Completion(fence("def add(a, b):\n    return a + b"), ADD_ROW))
    assert res.score == 1.0


def test_a_step_is_scored_in_one_batch_through_combine():
    from r1lab.rewards.combine import RewardComponent, score_completions

    texts = ["def add(a, b):\n    return a + b", "def add(a, b):\n    return a * b"]
    comps = [Completion(fence(t), ADD_ROW) for t in texts]
    comps.append(Completion(fence("def sq(x):\n    return 4"), MBPP_ROW))
    spec = [RewardComponent("accuracy", 1.0, {"code": {"score": "fraction"}})]
    table = score_completions(spec, comps)
    assert table.components["accuracy"] == pytest.approx([1.0, 0.0, 1 / 3], abs=1e-6)
    assert table.errors["accuracy"] == 0
    assert table.results["accuracy"][2].info["verdicts"] == ["pass", "wrong_answer", "wrong_answer"]
