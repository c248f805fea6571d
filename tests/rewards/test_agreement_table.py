"""``r1lab grade`` (default extraction policy) against the expected verdicts of other verifiers'
test suites and our own free-form outputs (`agreement_table.py`): >= 99% agreement per source on
rows whose verdict does not depend on a library-specific convention."""

from __future__ import annotations

import json

import pytest
from agreement_table import ROWS

from r1lab.rewards.grade import grade_jsonl

MIN_AGREEMENT = 0.99


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("agreement")
    with (tmp / "in.jsonl").open("w") as f:
        for i, (source, gold, pred, expected, convention) in enumerate(ROWS):
            row = {"i": i, "source": source, "answer": gold, "prediction": pred}
            f.write(json.dumps({**row, "expected": expected, "convention": convention}) + "\n")
    summary = grade_jsonl(tmp / "in.jsonl", tmp / "out.jsonl")
    assert summary.rows == len(ROWS) and summary.bad_rows == 0
    return [json.loads(line) for line in (tmp / "out.jsonl").read_text().splitlines()]


def test_table_shape():
    assert len(ROWS) >= 250
    assert len({(s, g, p) for s, g, p, *_ in ROWS}) == len(ROWS)
    for source, _, _, expected, convention in ROWS:
        assert source in {"math_verify", "lighteval", "r1lab"} and isinstance(expected, bool)
        assert convention is None or (isinstance(convention, str) and convention)
    assert sum(e for *_, e, _ in ROWS) > 60 and sum(not e for *_, e, _ in ROWS) > 40


@pytest.mark.parametrize("source", ["math_verify", "lighteval", "r1lab"])
def test_agreement_per_source(graded, source):
    rows = [r for r in graded if r["source"] == source and r["convention"] is None]
    misses = [
        (r["answer"][:60], r["prediction"][:80], r["expected"], r["extracted"], r["extractor"])
        for r in rows
        if r["correct"] is not r["expected"] or r["error"]
    ]
    marked = [r for r in graded if r["source"] == source and r["convention"] is not None]
    agree_marked = sum(r["correct"] is r["expected"] for r in marked)
    print(
        f"{source}: {len(rows) - len(misses)}/{len(rows)} unmarked rows agree; "
        f"marked (library convention) {agree_marked}/{len(marked)}"
    )
    assert len(rows) >= 20
    assert len(rows) - len(misses) >= MIN_AGREEMENT * len(rows), misses
