"""Offline re-grading of a predictions JSONL file (the library side of ``r1lab grade``) and the
command itself: the default extraction policy, --extractor / --verifier-param, and bad input."""

from __future__ import annotations

import json

import pytest

from r1lab.cli import main
from r1lab.errors import ConfigError, DataError
from r1lab.rewards.grade import grade_jsonl


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_grades_every_row_and_counts_outcomes(tmp_path):
    rows = [
        {"id": 1, "output": "so \\boxed{\\frac{1}{2}}", "gold": "0.5"},
        {"id": 2, "output": "\\boxed{3}", "gold": "4"},
        {"id": 3, "output": "I give up", "gold": "4"},
        {"id": 4, "output": "\\boxed{9^{9^{9^{9}}}}", "gold": "4"},
    ]
    write(tmp_path / "in.jsonl", rows)
    summary = grade_jsonl(
        tmp_path / "in.jsonl",
        tmp_path / "out" / "verdicts.jsonl",
        verifier="math",
        verifier_params={"extractor": "boxed", "timeout_s": 0.5},
        prediction_field="output",
        answer_field="gold",
    )
    assert (summary.rows, summary.correct, summary.no_answer) == (4, 1, 1)
    assert (summary.errors, summary.timeouts, summary.bad_rows) == (1, 1, 0)
    assert summary.accuracy == 0.25
    out = read(summary.out_path)
    assert [r["id"] for r in out] == [1, 2, 3, 4]
    assert [r["correct"] for r in out] == [True, False, False, False]
    assert out[0]["extracted"] == "\\frac{1}{2}" and out[3]["timeout"] is True
    assert out[0]["extractor"] == "boxed" and out[2]["extractor"] is None


@pytest.mark.parametrize(
    "prediction,gold,extractor",
    [  # issue 18: each of these said "no answer" before the default policy
        ("-5", "-5", "math_verify"),
        ("7,425,000", "7425000", "math_verify"),
        ("Answer $ 9 $", "9", "math_verify"),
        ("She sold 48/2 = 24 clips.\nThen 48+24 = 72.\nA: 42", "42", "math_verify"),
        ("She sold 48/2 = 24 clips.\n#### 42", "42", "gsm8k"),
        ("the number is 1,000.99€", "1000.99", "math_verify"),
        ("<think>1 + 1</think>\n<answer>\\boxed{2}</answer>", "2", "answer_or_boxed"),
    ],
)
def test_default_policy_grades_what_users_hand_us(tmp_path, prediction, gold, extractor):
    write(tmp_path / "in.jsonl", [{"prediction": prediction, "answer": gold}])
    summary = grade_jsonl(tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    (row,) = read(summary.out_path)
    assert row["correct"] is True, row
    assert row["extractor"] == extractor


def test_bad_lines_get_an_error_row_and_the_run_goes_on(tmp_path):
    bomb = "\\frac{1}{" * 2000 + "2" + "}" * 2000
    lines = [
        json.dumps({"prediction": "-5", "answer": "-5"}).encode(),
        json.dumps({"prediction": "7"}).encode(),  # no answer field
        b'{"prediction": "\xff\xfe", "answer": "1"}',  # not UTF-8
        b"not json",
        json.dumps({"prediction": "x " * 500_000 + "so the answer is 3", "answer": "3"}).encode(),
        json.dumps({"prediction": "\\boxed{" + bomb + "}", "answer": "1"}).encode(),
        json.dumps({"prediction": "4", "answer": "4"}).encode(),
    ]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    summary = grade_jsonl(
        tmp_path / "in.jsonl", tmp_path / "out.jsonl", verifier_params={"timeout_s": 1.0}
    )
    assert (summary.rows, summary.correct, summary.bad_rows, summary.timeouts) == (7, 3, 3, 1)
    assert summary.accuracy == pytest.approx(3 / 7)
    assert [p.split(":", 2)[1:] for p in summary.problems] == [
        ["2", " no text field 'answer' (row keys: prediction)"],
        ["3", f" not UTF-8 text (byte 0xff at byte offset {len(lines[0]) + len(lines[1]) + 18})"],
        ["4", " not valid JSON (Expecting value)"],
    ]
    out = read(summary.out_path)
    assert len(out) == 7 and [r.get("line") for r in out[1:4]] == [2, 3, 4]
    assert [r["correct"] for r in out] == [True, False, False, False, True, False, True]
    assert out[5]["timeout"] is True and "timeout" in out[5]["error"]


def test_a_file_without_one_usable_line_is_a_data_error(tmp_path):
    write(tmp_path / "in.jsonl", [{"output": "1", "gold": "1"}, {"output": "2"}])
    with pytest.raises(
        DataError, match=r"in.jsonl: no line is usable \(line 1: no text field 'prediction'"
    ):
        grade_jsonl(tmp_path / "in.jsonl", tmp_path / "out.jsonl")


def test_extractor_and_params_are_checked(tmp_path):
    write(tmp_path / "in.jsonl", [{"prediction": "1", "answer": "1"}])
    with pytest.raises(ConfigError, match="unknown answer extractor 'nosuch'"):
        grade_jsonl(tmp_path / "in.jsonl", tmp_path / "o.jsonl", extractor="nosuch")
    with pytest.raises(ConfigError, match=r"verifier 'math' takes no \['bogus'\]"):
        grade_jsonl(tmp_path / "in.jsonl", tmp_path / "o.jsonl", verifier_params={"bogus": 1})


def test_cli_extractor_and_verifier_params(tmp_path, capsys):
    rows = [
        {"prediction": "The answer is 42.", "answer": "42"},
        {"prediction": "\\boxed{7} and then 8", "answer": "7"},
        {"prediction": "\\boxed{9^{9^{9^{9}}}}", "answer": "7"},
    ]
    write(tmp_path / "in.jsonl", rows)
    inp, out = str(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    for extra in (
        ["--extractor", "boxed", "--verifier-param", "timeout_s=0.5"],
        ["--verifier-param", "extractor=boxed", "--verifier-param", "timeout_s=0.5"],
    ):
        assert main(["grade", inp, str(out), *extra]) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert (summary["rows"], summary["correct"], summary["timeouts"]) == (3, 1, 1)
        verdicts = read(out)
        assert [r["extractor"] for r in verdicts] == [None, "boxed", "boxed"]
        assert "within 0.5 s" in verdicts[2]["error"]
    assert main(["grade", inp, str(out), "--verifier-param", "timeout_s=0.5"]) == 0
    assert [r["extractor"] for r in read(out)][:2] == ["math_verify", "answer_or_boxed"]
    capsys.readouterr()
    assert main(["grade", inp, str(out), "--verifier-param", "timeout_s"]) == 2
    assert "--verifier-param wants K=V" in capsys.readouterr().err


def test_cli_reports_bad_lines_on_stderr_one_line_each(tmp_path, capsys):
    (tmp_path / "in.jsonl").write_bytes(b'{"prediction": "1", "answer": "1"}\n\xff\n')
    assert main(["grade", str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl")]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"skipped {tmp_path / 'in.jsonl'}:2: not UTF-8 text (byte 0xff at byte offset 35)"
    )
    assert json.loads(captured.out.strip().splitlines()[-1])["bad_rows"] == 1


def test_the_extracted_answer_shown_is_the_one_graded(tmp_path):
    # math-verify first tries the LaTeX after "Final answer is", which fails to parse; the row
    # shows the 42 that was graded, not that failed candidate
    pred = r"Final answer is $\sum_{k=0}^n\bigl(k\bigr)$. I hope. 42"
    write(tmp_path / "in.jsonl", [{"prediction": pred, "answer": "42"}])
    (row,) = read(grade_jsonl(tmp_path / "in.jsonl", tmp_path / "out.jsonl").out_path)
    assert (row["correct"], row["extracted"], row["extractor"]) == (True, "42", "math_verify")
