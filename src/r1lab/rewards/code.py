"""Code rewards (DeepSeek-R1 §2.2.2: "compile and run against predefined test cases").

The program is pulled out of the completion (``code_block``: last fenced block by default, see
`CODE_EXTRACTORS`) and run in the sandbox (r1lab.sandbox) against the row's tests. Row fields (any
combination; every test found is run):

- ``tests``: list of ``{"input": str, "output": str}`` (or that list as a JSON string):
  stdin/stdout tests (Codeforces, LiveCodeBench). Output comparison: ``compare="tokens"``
  (whitespace-insensitive, the default), ``"lines"`` (trailing spaces and blank lines ignored) or
  ``"exact"``.
- ``test`` + ``entry_point``: HumanEval style. ``test`` defines ``check(candidate)``; the program
  is ``code + test + check(<entry_point>)``. One test.
- ``test_list`` (+ optional ``test_setup_code``, ``test_imports``): MBPP style; each assert
  statement is one test.
- optional ``timeout_s`` / ``memory_mb``: per-row limits that override the params.
- ``problem`` (or ``prompt``): put before the code when ``include_prompt=True``, for completions
  that continue a HumanEval prompt rather than restate the function.

Score: ``score="all"`` gives 1.0 iff every test passes, ``"fraction"`` the fraction passed.
Per-test verdicts (``pass``, ``wrong_answer``, ``runtime_error``, ``timeout``, ``memory_limit``,
``output_limit``) are kept in ``RewardResult.info["verdicts"]``. The batch form (what ``accuracy``
calls once per step) sends every test of every sample through the sandbox pool at once; recipe
params for this verifier go in accuracy's ``code:`` section, e.g. ``{code: {score: fraction}}``.

A function-call test passes only if the program exits 0 *and* prints a random per-run marker
that the harness writes after ``check(...)``: a program that calls ``sys.exit(0)`` before the
tests run does not pass. (A program that reads the harness out of its own source can still forge
it; see docs/sandbox.md.) Not here: float-tolerant comparison and special judges.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from r1lab.errors import ConfigError, DataError, R1LabError
from r1lab.registry import Registry
from r1lab.rewards.base import VERIFIERS, BatchContext, Completion, RewardResult, batch_form
from r1lab.sandbox import ExecResult, Program, SandboxConfig, SandboxPool, default_pool

CODE_EXTRACTORS: Registry = Registry("code extractor")
VERDICTS = ("pass", "wrong_answer", "runtime_error", "timeout", "memory_limit", "output_limit")
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)
_PYTHON_TAGS = {"python", "py", "python3"}


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Closed fenced code blocks in order, as (language tag lower-cased, body)."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


@CODE_EXTRACTORS.register("last_block")
def extract_last_block(text: str) -> str | None:
    blocks = fenced_blocks(text)
    return blocks[-1][1] if blocks else None


@CODE_EXTRACTORS.register("first_block")
def extract_first_block(text: str) -> str | None:
    blocks = fenced_blocks(text)
    return blocks[0][1] if blocks else None


@CODE_EXTRACTORS.register("last_python_block")
def extract_last_python_block(text: str) -> str | None:
    """The last block tagged python/py/python3, else the last untagged block."""
    blocks = fenced_blocks(text)
    for wanted in (_PYTHON_TAGS, {""}):
        found = [body for tag, body in blocks if tag in wanted]
        if found:
            return found[-1]
    return None


@CODE_EXTRACTORS.register("raw")
def extract_raw(text: str) -> str | None:
    """The whole completion is the program (base-model continuations)."""
    return text if text.strip() else None


@dataclass(frozen=True)
class CodeCase:
    """One execution: a stdin/stdout test (``expected``) or a function-call test (``marker``)."""

    program: Program
    config: SandboxConfig
    expected: str | None = None
    marker: str | None = None


def outputs_match(got: str, expected: str, compare: str = "tokens") -> bool:
    if compare == "tokens":
        return got.split() == expected.split()
    if compare == "lines":
        norm = [[ln.rstrip() for ln in s.rstrip().splitlines()] for s in (got, expected)]
        return norm[0] == norm[1]
    if compare == "exact":
        return got == expected
    raise ConfigError(f"unknown compare mode {compare!r}; known: exact, lines, tokens")


def _stdio_tests(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    tests = row.get("tests")
    if tests is None:
        return []
    if isinstance(tests, str):
        try:
            tests = json.loads(tests)
        except json.JSONDecodeError as exc:
            raise DataError(f"row 'tests' is a string but not JSON: {exc}") from None
    if not isinstance(tests, list):
        raise DataError("row 'tests' must be a list of {'input': str, 'output': str}")
    pairs = []
    for i, t in enumerate(tests):
        if not (isinstance(t, Mapping) and isinstance(t.get("input"), str)):
            raise DataError(f"row 'tests'[{i}] needs string fields 'input' and 'output'")
        if not isinstance(t.get("output"), str):
            raise DataError(f"row 'tests'[{i}] needs string fields 'input' and 'output'")
        pairs.append((t["input"], t["output"]))
    return pairs


def _call_program(code: str, setup: str, test: str, call: str, marker: str) -> str:
    # os.write on fd 1: the marker does not depend on the candidate's print or sys.stdout.
    tail = f"import os as _r1lab_os\n_r1lab_os.write(1, b'\\n{marker}\\n')\n"
    return "\n\n".join(part for part in (code, setup, test, call, tail) if part)


def build_cases(
    code: str, row: Mapping[str, Any], config: SandboxConfig, include_prompt: bool = False
) -> list[CodeCase]:
    """Every execution the row's tests need (DataError if the row has none or is malformed)."""
    if include_prompt:
        code = str(row.get("problem", row.get("prompt", ""))) + code
    cases = [
        CodeCase(Program(code, stdin=inp), config, expected=out) for inp, out in _stdio_tests(row)
    ]
    imports = row.get("test_imports") or []
    if not isinstance(imports, list) or not all(isinstance(t, str) for t in imports):
        raise DataError("row 'test_imports' must be a list of import statements (strings)")
    setup = "\n".join([*imports, str(row.get("test_setup_code") or "")]).strip()
    if row.get("test") is not None:
        entry = row.get("entry_point")
        if not isinstance(entry, str) or not entry.isidentifier():
            raise DataError("a row with 'test' needs 'entry_point', the function name to check")
        marker = f"R1LAB-TESTS-DONE-{secrets.token_hex(16)}"
        src = _call_program(code, setup, str(row["test"]), f"check({entry})", marker)
        cases.append(CodeCase(Program(src), config, marker=marker))
    test_list = row.get("test_list") or []
    if not isinstance(test_list, list) or not all(isinstance(t, str) for t in test_list):
        raise DataError("row 'test_list' must be a list of assert statements (strings)")
    for assertion in test_list:
        marker = f"R1LAB-TESTS-DONE-{secrets.token_hex(16)}"
        cases.append(
            CodeCase(
                Program(_call_program(code, setup, assertion, "", marker)), config, marker=marker
            )
        )
    if not cases:
        raise DataError(
            "code row has no tests: give 'tests' (stdin/stdout pairs), 'test' + 'entry_point' "
            "(HumanEval) or 'test_list' (MBPP)"
        )
    return cases


def judge(case: CodeCase, res: ExecResult, compare: str = "tokens") -> str:
    """The verdict of one execution (``cancelled`` / ``sandbox_error`` pass through as is)."""
    if res.status == "ok":
        if case.marker is not None:
            # Exit 0 without the marker: the program left before the tests ran.
            return "pass" if case.marker in res.stdout else "runtime_error"
        return "pass" if outputs_match(res.stdout, case.expected or "", compare) else "wrong_answer"
    if res.status == "runtime_error" and case.marker is not None:
        last = res.stderr.strip().splitlines()[-1:] or [""]
        return "wrong_answer" if last[0].startswith("AssertionError") else "runtime_error"
    return res.status


def _summarize(
    cases: list[CodeCase], results: list[ExecResult], code: str, score: str, compare: str
):
    verdicts = [judge(c, r, compare) for c, r in zip(cases, results)]
    passed = verdicts.count("pass")
    info: dict[str, Any] = {"verdicts": verdicts, "passed": passed, "total": len(verdicts)}
    info["wall_s"] = round(sum(r.wall_s for r in results), 4)
    failed = [(v, r) for v, r in zip(verdicts, results) if v != "pass"]
    if failed:
        v, r = failed[0]
        info["first_failure"] = {"verdict": v, "stderr_tail": r.stderr[-300:], "error": r.error}
    broken = [r for r in results if r.status in ("cancelled", "sandbox_error")]
    error = None
    if broken:
        error = f"{len(broken)} of {len(results)} tests did not run: {broken[0].error}"
    value = passed / len(verdicts) if score == "fraction" else float(passed == len(verdicts))
    return RewardResult(value, error=error, extracted=code, info=info)


def score_code_batch(
    completions: Sequence[Completion],
    *,
    code_block: str = "last_block",
    score: str = "all",
    compare: str = "tokens",
    timeout_s: float = 5.0,
    memory_mb: int = 1024,
    include_prompt: bool = False,
    isolation: str = "auto",
    deadline_s: float | None = None,
    pool: SandboxPool | None = None,
) -> list[RewardResult]:
    """Score many completions, all their tests at once through ``pool`` (default: shared pool).

    Never raises for a bad row or a sandbox failure: that completion scores 0 with ``error`` set.
    ``deadline_s`` bounds the whole batch; tests still running then count as errors.
    """
    if score not in ("all", "fraction"):
        raise ConfigError(f"code reward score must be 'all' or 'fraction', got {score!r}")
    outputs_match("", "", compare)  # fail early on an unknown compare mode
    extract = CODE_EXTRACTORS.get(code_block)
    results: list[RewardResult | None] = [None] * len(completions)
    plans: list[tuple[int, str, list[CodeCase]]] = []
    for i, c in enumerate(completions):
        code = extract(c.text)
        if code is None:
            results[i] = RewardResult(0.0, info={"reason": "no code block found", "verdicts": []})
            continue
        try:
            cfg = SandboxConfig(
                timeout_s=float(c.row.get("timeout_s", timeout_s)),
                memory_mb=int(c.row.get("memory_mb", memory_mb)),
                isolation=isolation,  # type: ignore[arg-type]
            )
            plans.append((i, code, build_cases(code, c.row, cfg, include_prompt)))
        except (R1LabError, TypeError, ValueError) as exc:
            results[i] = RewardResult(0.0, error=f"{type(exc).__name__}: {exc}", extracted=code)
    cases = [case for _, _, cs in plans for case in cs]
    try:
        pool = pool or default_pool()
        runs = pool.run_many(
            [c.program for c in cases], [c.config for c in cases], deadline_s=deadline_s
        )
    except R1LabError as exc:  # no isolation available, bad setting: every sample records it
        runs = [ExecResult("sandbox_error", error=str(exc))] * len(cases)
    start = 0
    for i, code, cs in plans:
        results[i] = _summarize(cs, runs[start : start + len(cs)], code, score, compare)
        start += len(cs)
    return [r for r in results if r is not None]


@VERIFIERS.register("code")
def verify_code(c: Completion, **params: Any) -> RewardResult:
    """The ``code`` verifier: `score_code_batch` on one completion (same params)."""
    return score_code_batch([c], **params)[0]


@batch_form(verify_code)
def verify_code_batch(
    completions: Sequence[Completion], ctx: BatchContext, **params: Any
) -> list[RewardResult]:
    """Batch form (what ``accuracy`` calls for a step): every test of every sample in one pool run.

    Shapes: completions (B,) -> (B,). ``ctx`` is not needed: each sample is graded on its own.
    """
    return score_code_batch(completions, **params)
