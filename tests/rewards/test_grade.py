"""Offline re-grading of a predictions JSONL file (the library side of ``r1lab grade``)."""

from __future__ import annotations

import json

import pytest

from r1lab.errors import DataError
from r1lab.rewards.grade import grade_jsonl


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


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
    assert (summary.errors, summary.timeouts) == (1, 1)
    assert summary.accuracy == 0.25
    out = [json.loads(line) for line in summary.out_path.read_text().splitlines()]
    assert [r["id"] for r in out] == [1, 2, 3, 4]
    assert [r["correct"] for r in out] == [True, False, False, False]
    assert out[0]["extracted"] == "\\frac{1}{2}" and out[3]["timeout"] is True


def test_missing_fields_name_the_line(tmp_path):
    write(tmp_path / "in.jsonl", [{"prediction": "1", "answer": "1"}, {"prediction": "2"}])
    with pytest.raises(DataError, match=r"in.jsonl:2: no text field 'answer'"):
        grade_jsonl(tmp_path / "in.jsonl", tmp_path / "out.jsonl")
