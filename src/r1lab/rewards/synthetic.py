"""Verifiers for r1lab's synthetic tasks: exact numbers and Countdown equations.

These are exact checks (no symbolic algebra needed): the gold answer of an arithmetic row is an
integer; a Countdown row is solved by an expression that uses each given number exactly once
(TinyZero's rule; ``allow_unused=True`` relaxes it to at most once) and evaluates to the target.

Numbers: a comma is a thousands separator only in groups of three after a 1-3 digit head
(``1,234`` and ``1,234,567.5`` yes; ``1,2`` and ``12,34`` are not numbers).
"""

from __future__ import annotations

import ast
import operator
import re
from collections import Counter
from fractions import Fraction

from r1lab.rewards.base import VERIFIERS, Completion, RewardResult
from r1lab.rewards.extract import extract_named

_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")


def parse_number(text: str) -> Fraction | None:
    """'1,234' / '-3.50' / '7/2' / '\\frac{7}{2}'-free plain numbers -> Fraction, else None."""
    s = text.strip().strip("$").rstrip(".").strip()
    if "," in s:
        if not _THOUSANDS.fullmatch(s):
            return None
        s = s.replace(",", "")
    if not s:
        return None
    try:
        if "/" in s:
            num, den = s.split("/", 1)
            return Fraction(int(num.strip()), int(den.strip()))
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


@VERIFIERS.register("number")
def verify_number(c: Completion, extractor: str = "answer_or_boxed") -> RewardResult:
    """1.0 iff the extracted answer equals the gold number exactly (1,000 == 1000 == 1000.0)."""
    got, name = extract_named(c.text, extractor)
    if got is None:
        return RewardResult(0.0, extracted=None, info={"reason": "no answer found"})
    gold = parse_number(str(c.row["answer"]))
    if gold is None:
        return RewardResult(0.0, error=f"gold answer {c.row['answer']!r} is not a number")
    pred = parse_number(got)
    ok = pred is not None and pred == gold
    return RewardResult(float(ok), extracted=got, info={"extractor": name})


_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _eval_arith(node: ast.AST, used: list[int]) -> Fraction:
    if isinstance(node, ast.Expression):
        return _eval_arith(node.body, used)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval_arith(node.left, used), _eval_arith(node.right, used)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ZeroDivisionError("division by zero")
        return _OPS[type(node.op)](left, right)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        used.append(node.value)
        return Fraction(node.value)
    raise ValueError("only integers, + - * / and parentheses are allowed")


def eval_countdown_expression(expr: str) -> tuple[Fraction, list[int]]:
    """Evaluate an equation like ``(25-5)*4`` exactly; returns (value, integer literals used)."""
    expr = expr.split("=")[0].strip()
    if len(expr) > 200:
        raise ValueError("expression too long")
    tree = ast.parse(expr, mode="eval")
    used: list[int] = []
    return _eval_arith(tree, used), used


@VERIFIERS.register("countdown")
def verify_countdown(
    c: Completion, extractor: str = "answer_or_boxed", allow_unused: bool = False
) -> RewardResult:
    """1.0 iff the answer is an expression over the row's ``numbers`` (each used exactly once,
    or at most once with ``allow_unused``) that evaluates to the row's target (``answer``)."""
    got, _ = extract_named(c.text, extractor)
    if got is None:
        return RewardResult(0.0, info={"reason": "no answer found"})
    try:
        value, used = eval_countdown_expression(got)
    except (SyntaxError, ValueError, ZeroDivisionError) as exc:
        return RewardResult(0.0, extracted=got, info={"reason": f"invalid expression: {exc}"})
    available = Counter(int(n) for n in c.row["numbers"])
    if Counter(used) - available:
        return RewardResult(0.0, extracted=got, info={"reason": "uses numbers not given"})
    if not allow_unused and Counter(used) != available:
        return RewardResult(0.0, extracted=got, info={"reason": "does not use every number"})
    ok = value == Fraction(int(c.row["answer"]))
    return RewardResult(float(ok), extracted=got)
