"""Evaluate any `Generator` on `Example`s with the R1 protocol (algorithms.md section 11).

`evaluate` samples k completions per problem (default temperature 0.6, top-p 0.95), grades each
with the row's verifier through the rewards registry (failures contained and counted by
`r1lab.rewards.combine.score_completions`), and reports pass@1, unbiased pass@j, cons@k, format
and truncation rates with standard errors (see `r1lab.eval.results.summarize`).

Grading:
- correct = the ``accuracy`` component (which dispatches to ``row["verifier"]``) scores >= 1 with
  no error. Its params come from the ``accuracy`` entry of `reward_spec` when there is one (so
  evaluation grades like training); `extractor` is passed to verifiers that take one.
- format = the reward component named `format_reward` (default ``format``, the strict R1-Zero
  tags); set it to a different component for \\boxed benchmarks, or None to skip.
- cons@k groups the extracted answers: samples the verifier judged correct form one group (each
  is equivalent to the gold answer); other answers are grouped by `equivalent` when given, else by
  `r1lab.eval.metrics.normalize_answer` (numeric equality for plain numbers).

Determinism: prompts go to the generator in fixed chunks; chunk c gets the seed
``sampling.seed * 1_000_003 + first problem index of c``, so with a seeded generator a resumed
run equals an uninterrupted one (chunks are written whole; on resume only the problems missing
from the JSONL are sent, so a finished sample is never generated again).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from r1lab.engines.base import Generator
from r1lab.errors import ConfigError, DataError
from r1lab.eval.results import EvalResult, summarize
from r1lab.eval.store import eval_meta, open_store
from r1lab.registry import RegistryError
from r1lab.rewards import REWARDS, VERIFIERS, Completion, RewardResult
from r1lab.rewards.combine import RewardComponent, check_spec, score_completions
from r1lab.rewards.extract import EXTRACTORS, extract
from r1lab.types import Example, Rollout, SamplingParams
from r1lab.utils.progress import progress_bar

EVAL_SAMPLING = SamplingParams(temperature=0.6, top_p=0.95, seed=0)


def evaluate(
    generator: Generator,
    examples: Sequence[Example],
    *,
    prompts: Sequence[str],
    k: int = 8,
    sampling: SamplingParams = EVAL_SAMPLING,
    reward_spec: Sequence[RewardComponent] | None = None,
    extractor: str | None = "answer_or_boxed",
    format_reward: str | None = "format",
    equivalent: Callable[[str, str], bool] | None = None,
    out_path: Path | None = None,
    resume: bool = False,
    chunk_size: int | None = None,
    progress: bool = True,
) -> EvalResult:
    """Sample `k` completions of each prompt, grade them and summarize.

    `prompts[i]` is the rendered prompt of `examples[i]`. `out_path` receives one JSONL row per
    sample as chunks finish; with ``resume=True`` the problems already complete in it are not
    generated again. `chunk_size` is the number of problems per `generate` call (default: the
    generator's ``batch_size`` // k, at least 1, else 8). ``extractor=None`` (code tasks) skips
    answer extraction and cons@k.
    """
    t0 = time.time()
    _check_inputs(examples, prompts, k, extractor, format_reward, reward_spec)
    spec = list(reward_spec or [])
    grading = Grading(
        spec,
        _accuracy_params(examples, spec, extractor),
        extractor,
        format_reward,
        sampling.max_new_tokens,
    )
    if chunk_size is None:
        chunk_size = max(1, int(getattr(generator, "batch_size", 8 * k)) // k)
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
    prompts, ids = list(prompts), [ex.id for ex in examples]
    writer, done = None, {}
    if out_path is not None:
        meta = eval_meta(k, sampling, extractor, format_reward, [c.name for c in spec])
        writer, done = open_store(Path(out_path), meta, resume=resume, prompts=prompts, ids=ids)
    samples = [row for pi in sorted(done) for row in done[pi]]
    stats = {"tokens": 0, "seconds": 0.0}
    try:
        with progress_bar("eval", len(examples), enabled=progress) as advance:
            advance(len(done))
            for start in range(0, len(examples), chunk_size):
                chunk = range(start, min(start + chunk_size, len(examples)))
                todo = [i for i in chunk if i not in done]
                if not todo:
                    continue
                t1 = time.time()
                rollouts = generator.generate(
                    [prompts[i] for i in todo], k, _chunk_sampling(sampling, start)
                )
                stats["seconds"] += time.time() - t1
                _check_rollouts(rollouts, len(todo), k)
                rows = grade(rollouts, todo, examples, prompts, grading)
                for row in rows:
                    if writer is not None:
                        writer.write(row)
                stats["tokens"] += sum(r["num_tokens"] for r in rows)
                samples += rows
                running = sum(r["correct"] for r in samples) / len(samples)
                advance(len(todo), info=f"pass@1 {running:.3f}")
    finally:
        if writer is not None:
            writer.close()
    samples.sort(key=lambda r: (r["problem_index"], r["sample_index"]))
    metrics, problems = summarize(
        samples,
        k=k,
        has_format=format_reward is not None,
        has_answers=extractor is not None,
        equivalent=equivalent,
        ci_seed=sampling.seed or 0,
    )
    metrics["wall_seconds"] = time.time() - t0
    metrics["tokens_per_second"] = stats["tokens"] / stats["seconds"] if stats["seconds"] else 0.0
    metrics["resumed_problems"] = len(done)
    return EvalResult(metrics, samples, problems)


def _chunk_sampling(sampling: SamplingParams, start: int) -> SamplingParams:
    if sampling.seed is None:
        return sampling
    return replace(sampling, seed=(sampling.seed * 1_000_003 + start) % 2**63)


def _check_inputs(examples, prompts, k, extractor, format_reward, reward_spec) -> None:
    if len(prompts) != len(examples):
        raise ConfigError(f"{len(prompts)} prompts for {len(examples)} examples; need one each")
    if not examples:
        raise DataError("no examples to evaluate")
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    try:
        if extractor is not None:
            EXTRACTORS.get(extractor)
        if format_reward is not None:
            REWARDS.get(format_reward)
        check_spec(reward_spec or [])
        for name in sorted({ex.verifier for ex in examples}):
            VERIFIERS.get(name)
    except RegistryError as exc:
        raise ConfigError(f"cannot grade this evaluation: {exc}") from None


def _accuracy_params(
    examples: Sequence[Example], spec: list[RewardComponent], extractor: str | None
) -> dict[str, dict[str, Any]]:
    """Verifier name -> params for the ``accuracy`` component on rows of that verifier."""
    base = next((dict(c.params) for c in spec if c.name == "accuracy"), {})
    out = {}
    for name in {ex.verifier for ex in examples}:
        params = dict(base)
        takes = inspect.signature(VERIFIERS.get(name)).parameters
        if extractor is not None and "extractor" in takes and "extractor" not in params:
            params["extractor"] = extractor
        out[name] = params
    return out


def num_tokens(r: Rollout) -> int:
    """Completion length in tokens: the token ids, or the count an endpoint reported."""
    return len(r.completion_ids) or int(getattr(r, "num_tokens", 0) or 0)


def _check_rollouts(rollouts: list[Rollout], n_prompts: int, k: int) -> None:
    got = [(r.prompt_index, r.sample_index) for r in rollouts]
    want = [(i, j) for i in range(n_prompts) for j in range(k)]
    if got != want:
        raise DataError(
            f"generator returned {len(rollouts)} rollouts not in prompt-major order "
            f"(expected {n_prompts} prompts x {k} samples)"
        )


@dataclass(frozen=True)
class Grading:
    """How samples are graded: reward spec, ``accuracy`` params per verifier, extraction."""

    spec: list[RewardComponent]
    acc_params: dict[str, dict[str, Any]]
    extractor: str | None
    format_reward: str | None
    max_tokens: int


def _score(comps: list[Completion], exs: list[Example], groups: list[int], g: Grading):
    """(accuracy results, format results or None, reward table or None) of the completions."""
    acc: list[RewardResult] = [RewardResult(0.0)] * len(comps)
    for name, params in g.acc_params.items():
        idx = [i for i, ex in enumerate(exs) if ex.verifier == name]
        spec = [RewardComponent("accuracy", 1.0, params)]
        for i, res in zip(
            idx, score_completions(spec, [comps[i] for i in idx]).results["accuracy"]
        ):
            acc[i] = res
    fmt = None
    if g.format_reward is not None:
        fmt = score_completions([RewardComponent(g.format_reward)], comps).results[g.format_reward]
    # group ids = problem index, for group-level rewards (e.g. Kimi's length reward)
    total = score_completions(g.spec, comps, group_ids=groups) if g.spec else None
    return acc, fmt, total


def grade(
    rollouts: list[Rollout],
    problem_indices: Sequence[int],
    examples: Sequence[Example],
    prompts: Sequence[str],
    g: Grading,
) -> list[dict[str, Any]]:
    """Per-sample rows of rollouts of `problem_indices` (rollout.prompt_index indexes that list)."""
    index = [problem_indices[r.prompt_index] for r in rollouts]
    exs = [examples[pi] for pi in index]
    comps = [
        Completion(r.text, ex.as_row(), num_tokens(r), r.truncated, g.max_tokens)
        for r, ex in zip(rollouts, exs)
    ]
    acc, fmt, total = _score(comps, exs, index, g)
    rows = []
    for i, (r, ex) in enumerate(zip(rollouts, exs)):
        res = acc[i]
        extracted = None
        if g.extractor is not None:
            extracted = res.extracted if res.extracted is not None else extract(r.text, g.extractor)
        errors = {"accuracy": res.error} if res.error else {}
        if fmt is not None and fmt[i].error:
            errors[g.format_reward] = fmt[i].error
        row = {
            "problem_index": index[i],
            "problem_id": ex.id,
            "sample_index": r.sample_index,
            "prompt": prompts[index[i]],
            "completion": r.text,
            "gold": ex.answer,
            "verifier": ex.verifier,
            "extracted": extracted,
            "correct": bool(res.error is None and res.score >= 1.0),
            "format": None if fmt is None else fmt[i].score,
            "finish_reason": r.finish_reason,
            "num_tokens": comps[i].num_tokens,
        }
        if total is not None:
            row["reward"] = total.total[i]
            errors.update({n: out[i].error for n, out in total.results.items() if out[i].error})
        if errors:
            row["errors"] = errors
        rows.append(row)
    return rows
