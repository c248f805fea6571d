"""Benchmark sets as `Example`s, with R1's per-benchmark evaluation defaults.

The benchmark files ship with the package (``r1lab/data/benchmarks/*.jsonl``; schema, provenance
and licenses in the README.md beside them: ``id``, ``problem``, ``answer``, ...) and load through
`load_benchmark`; any JSONL / Parquet / ``hf:NAME``
source loads through `load_source` with a column mapping. Prompts follow R1's usage
recommendations: no system prompt, and for math the instruction "Please reason step by step,
and put your final answer within \\boxed{}." after the problem.

Defaults per benchmark (`BenchmarkSpec`): k as in R1 / open-r1 (64 for AIME, 4 for MATH-500 and
GSM8K, 16 for AMC and HumanEval), R1's 32,768 generated tokens, the ``default`` extraction
policy (a ``\\boxed{}`` first; docs/grading.md). The
verifier is named, not imported: integer-answer sets (AIME, AMC, GSM8K) use ``number`` (exact
numeric equality); MATH-500 needs ``math`` and HumanEval ``code`` (the rewards issues), and the
evaluation runner refuses to start, naming the missing verifier, until they are registered.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1lab.errors import ConfigError, DataError
from r1lab.registry import Registry
from r1lab.types import Example

log = logging.getLogger(__name__)

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
CODE_INSTRUCTION = (
    "Complete the following Python function. Reply with the whole function in one "
    "```python code block."
)
R1_MAX_TOKENS = 32768


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark lives and how R1's protocol evaluates it."""

    file: str
    verifier: str
    k: int
    max_new_tokens: int = R1_MAX_TOKENS
    instruction: str = MATH_INSTRUCTION
    extractor: str | None = "default"  # rewards.extract: box, ####, math-verify, ...
    format_reward: str | None = None  # no tags are asked for: format is not scored
    question_key: str = "problem"
    sha256: str = ""


BENCHMARKS: Registry[BenchmarkSpec] = Registry("benchmark")
for _name, _spec in {
    "math500": BenchmarkSpec(
        "math500.jsonl", "math", 4,
        sha256="841506dff16e255f074cc7873507dad42a5310c0fd10d0cb9b31c9303316c2a8"),
    "aime2024": BenchmarkSpec(
        "aime2024.jsonl", "number", 64,
        sha256="313e2d6ef6100bd10cc1b47041a35aa25cc04c9b9dc390bb912680dbd1dc9eb7"),
    "aime2025": BenchmarkSpec(
        "aime2025.jsonl", "number", 64,
        sha256="6df3dd69099d74eff0dff546b049ed5d0875c8aec549c3d99673e0b8ccbc3f45"),
    "amc2023": BenchmarkSpec(
        "amc2023.jsonl", "number", 16,
        sha256="10ad30dca7fea423c71c7bce24a8468ef866e8cd705855e7f275164e3c0a5b61"),
    "gsm8k": BenchmarkSpec(
        "gsm8k_test.jsonl", "number", 4,
        sha256="3fe4a663e385666a19dba5e6bdcf057c6993b1aa0c15080437b84baaf00178f2"),
    "humaneval": BenchmarkSpec(
        "humaneval.jsonl", "code", 16, instruction=CODE_INSTRUCTION, extractor=None,
        sha256="8083740e414dca72614318af65f4f4f20d9dd5e3248da37499a39af1643716a1"),
}.items():  # fmt: skip
    BENCHMARKS.add(_name, _spec)


PACKAGED = Path(__file__).resolve().parents[1] / "data" / "benchmarks"


def benchmark_dir(data_dir: str | Path | None = None) -> Path:
    """`data_dir`, else ``$R1LAB_BENCHMARKS``, else the files shipped in the package."""
    if data_dir is not None:
        path, origin = Path(data_dir), "data_dir"
    elif os.environ.get("R1LAB_BENCHMARKS"):
        path, origin = Path(os.environ["R1LAB_BENCHMARKS"]), "$R1LAB_BENCHMARKS"
    else:
        path, origin = PACKAGED, "the r1lab package data (reinstall r1lab)"
    if not path.is_dir():
        raise DataError(
            f"benchmark directory {path} not found ({origin}); set R1LAB_BENCHMARKS or pass "
            "data_dir to read the files from elsewhere"
        )
    return path


def load_benchmark(
    name: str,
    *,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    verifier: str | None = None,
) -> list[Example]:
    """The first `limit` problems of benchmark `name` (all when None) as `Example`s.

    The file's sha256 is checked against the published one; a mismatch is logged as a warning
    (results on a modified file are not comparable to published numbers).
    """
    spec = BENCHMARKS.get(name)
    path = benchmark_dir(data_dir) / spec.file
    if spec.sha256 and path.exists():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != spec.sha256:
            log.warning("%s: sha256 %s differs from the published %s", path, digest, spec.sha256)
    examples = load_source(
        path,
        columns={"question": spec.question_key},
        verifier=verifier or spec.verifier,
        limit=limit,
    )
    return [_with_task(ex, name) for ex in examples]


def _with_task(ex: Example, task: str) -> Example:
    return Example(ex.id, ex.question, ex.answer, ex.verifier, task, ex.meta)


def load_source(
    source: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    verifier: str | None = None,
    limit: int | None = None,
) -> list[Example]:
    """Examples from a JSONL / Parquet file or ``hf:NAME[:split]`` with a column mapping.

    `columns` maps our fields to the source's: ``{"question": "problem", "answer": "solution",
    "id": "task_id"}`` (unmapped fields keep their names). The verifier is the row's
    ``verifier`` column, else `verifier`.
    """
    from r1lab.data.loaders import read_rows, row_to_example

    cols = dict(columns or {})
    unknown = set(cols) - {"question", "answer", "id"}
    if unknown:
        raise ConfigError(
            f"unknown column mapping keys {sorted(unknown)}; use question, answer, id"
        )
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be >= 1, got {limit}")
    keys = {
        "question_key": cols.get("question", "question"),
        "answer_key": cols.get("answer", "answer"),
        "id_key": cols.get("id", "id"),
        "verifier": verifier,
    }
    out: list[Example] = []
    for i, row in read_rows(source):
        out.append(row_to_example(row, f"{source}:{i}", **keys))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise DataError(f"{source}: no rows")
    return out


def user_message(question: str, instruction: str | None) -> str:
    """The problem followed by the instruction (R1: the instruction goes in the user turn)."""
    return f"{question}\n{instruction}" if instruction else question


def render_prompts(
    examples: Sequence[Example],
    *,
    instruction: str | None = MATH_INSTRUCTION,
    template: str = "chat",
    tokenizer: Any = None,
    force_think: bool = False,
) -> list[str]:
    """Prompts for a local model (``chat`` / ``r1_zero`` / ``plain`` template) or, with
    ``plain``, the user messages for a chat endpoint (the server applies its chat template).

    ``force_think`` appends ``<think>\\n`` after the chat template's generation prompt, as the R1
    README recommends for R1 models.
    """
    from r1lab.data.templates import render_prompt

    if template == "chat" and tokenizer is None:
        raise ConfigError("the chat template needs the model's tokenizer")
    prompts = [
        render_prompt(template, user_message(ex.question, instruction), tokenizer)
        for ex in examples
    ]
    return [p + "<think>\n" for p in prompts] if force_think else prompts
