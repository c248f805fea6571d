"""HumanEval through the code reward and the sandbox: canonical solutions pass 164/164; the same
solutions with every return statement removed pass 0/164 (so passing is not free)."""

from __future__ import annotations

import ast
import json
from collections import Counter

import pytest

from r1lab.eval.benchmarks import benchmark_dir
from r1lab.rewards.base import Completion
from r1lab.rewards.code import score_code_batch
from r1lab.sandbox import SandboxPool

DATA = benchmark_dir() / "humaneval.jsonl"  # shipped with the package


@pytest.fixture(scope="module")
def rows(bwrap_cfg):
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    assert len(rows) == 164
    return rows


class _DropReturns(ast.NodeTransformer):
    def visit_Return(self, node):
        return None

    def generic_visit(self, node):
        super().generic_visit(node)
        if isinstance(getattr(node, "body", None), list) and not node.body:
            node.body.append(ast.Pass())
        return node


def without_returns(source: str) -> str:
    tree = _DropReturns().visit(ast.parse(source))
    return ast.unparse(ast.fix_missing_locations(tree))


def fenced(code: str) -> str:
    return f"Here is my solution.\n```python\n{code}\n```\n"


def test_drop_returns_really_drops_them():
    src = "def f(x):\n    if x:\n        return 1\n    return 2\n"
    out = without_returns(src)
    assert "return" not in out and ast.parse(out)


def test_canonical_solutions_pass_all(rows):
    completions = [Completion(fenced(r["problem"] + r["answer"]), r) for r in rows]
    with SandboxPool() as pool:
        results = score_code_batch(completions, timeout_s=10.0, pool=pool)
    failed = [(r["id"], res.info, res.error) for r, res in zip(rows, results) if res.score != 1.0]
    assert not failed
    assert sum(res.score for res in results) == 164


def test_solutions_without_returns_pass_none(rows):
    completions = [Completion(fenced(without_returns(r["problem"] + r["answer"])), r) for r in rows]
    with SandboxPool() as pool:
        results = score_code_batch(completions, timeout_s=3.0, pool=pool)
    assert [res.error for res in results] == [None] * 164
    assert sum(res.score for res in results) == 0
    verdicts = Counter(v for res in results for v in res.info["verdicts"])
    assert verdicts["wrong_answer"] > 100  # mostly failed asserts, not crashes of the harness
