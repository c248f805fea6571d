"""`EvalResult` and the summary of per-sample rows into the R1 protocol's metrics.

A sample row (one completion) is a plain dict, the same one written to the per-sample JSONL:
``problem_index, problem_id, sample_index, prompt, completion, gold, verifier, extracted, correct,
format, finish_reason, num_tokens`` (plus ``reward`` and ``errors`` when scored with a reward
spec). `summarize` turns a list of them into metrics; `load_result` rebuilds an `EvalResult` from
a JSONL file, so reports can be made from finished (or resumed) evaluations without the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1lab.errors import DataError
from r1lab.eval import metrics as M
from r1lab.utils.jsonl import read_jsonl


@dataclass
class EvalResult:
    """Metrics (name -> number), per-sample rows and per-problem rows of one evaluation."""

    metrics: dict[str, Any]
    samples: list[dict[str, Any]]
    problems: list[dict[str, Any]] = field(default_factory=list)


def group_by_problem(samples: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows grouped per problem (ordered by problem_index), each group ordered by sample_index."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for row in samples:
        groups.setdefault(int(row["problem_index"]), []).append(row)
    return [sorted(groups[i], key=lambda r: r["sample_index"]) for i in sorted(groups)]


def problem_rows(
    grouped: list[list[dict[str, Any]]],
    equivalent: Callable[[str, str], bool] | None = None,
) -> list[dict[str, Any]]:
    out = []
    for rows in grouped:
        answers = [r["extracted"] for r in rows]
        correct = [bool(r["correct"]) for r in rows]
        winner, index = M.majority_vote(answers, correct, equivalent)
        out.append(
            {
                "problem_index": rows[0]["problem_index"],
                "problem_id": rows[0]["problem_id"],
                "gold": rows[0].get("gold"),
                "num_samples": len(rows),
                "num_correct": sum(correct),
                "accuracy": sum(correct) / len(rows),
                "majority_answer": winner,
                "majority_correct": bool(winner is not None and correct[index]),
            }
        )
    return out


def summarize(
    samples: Sequence[dict[str, Any]],
    *,
    k: int,
    has_format: bool = True,
    has_answers: bool = True,
    equivalent: Callable[[str, str], bool] | None = None,
    ci_seed: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(metrics, per-problem rows) of per-sample rows with k samples per problem.

    Metrics: ``pass@1`` with its standard error ``pass@1_se`` and 95% bootstrap interval
    ``pass@1_ci`` (over problems, seeded), ``pass@j`` (unbiased) for j in `pass_k_values(k)`,
    ``cons@k`` (omitted when the task has no extractable answers), ``format_rate``,
    ``truncation_rate``, ``no_answer_rate``, ``mean_response_tokens``, ``num_problems``,
    ``num_samples``, ``k``, ``grading_errors``.
    """
    if not samples:
        raise DataError("no evaluation samples to summarize")
    grouped = group_by_problem(samples)
    short = [g[0]["problem_id"] for g in grouped if len(g) != k]
    if short:
        raise DataError(f"{len(short)} problems do not have k={k} samples (first: {short[0]!r})")
    problems = problem_rows(grouped, equivalent)
    acc = [p["accuracy"] for p in problems]
    n = len(samples)
    metrics: dict[str, Any] = {"pass@1": M.mean(acc), "pass@1_se": M.standard_error(acc)}
    lo, hi = M.bootstrap_ci(acc, seed=ci_seed)
    metrics["pass@1_ci"] = [lo, hi]
    for j in M.pass_k_values(k):
        if j > 1:
            counts = [(p["num_samples"], p["num_correct"]) for p in problems]
            metrics[f"pass@{j}"] = M.mean_pass_at_k(counts, j)
    if has_answers:
        cons = [float(p["majority_correct"]) for p in problems]
        metrics[f"cons@{k}"] = M.mean(cons)
        metrics[f"cons@{k}_se"] = M.standard_error(cons)
        metrics["no_answer_rate"] = sum(r["extracted"] is None for r in samples) / n
    if has_format:
        metrics["format_rate"] = sum(float(r["format"]) for r in samples) / n
    metrics["truncation_rate"] = sum(r["finish_reason"] == "length" for r in samples) / n
    metrics["mean_response_tokens"] = sum(r["num_tokens"] for r in samples) / n
    if any("reward" in r for r in samples):
        metrics["reward_mean"] = sum(float(r.get("reward", 0.0)) for r in samples) / n
    metrics["grading_errors"] = sum(len(r.get("errors") or {}) for r in samples)
    metrics.update(num_problems=len(problems), num_samples=n, k=k)
    return metrics, problems


def load_result(path: Path, *, k: int | None = None, **summary_kw: Any) -> EvalResult:
    """An `EvalResult` rebuilt from a per-sample JSONL file (k inferred when not given)."""
    samples = read_jsonl(Path(path))
    if not samples:
        raise DataError(f"{path}: no evaluation samples")
    if k is None:
        k = max(len(g) for g in group_by_problem(samples))
    summary_kw.setdefault("has_format", all(r.get("format") is not None for r in samples))
    metrics, problems = summarize(samples, k=k, **summary_kw)
    return EvalResult(metrics, samples, problems)
