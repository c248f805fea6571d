"""Verifiable synthetic tasks, generated deterministically from a seed.

Two families where writing intermediate steps helps a small model:
- ``arith``: multi-step integer arithmetic, e.g. ``Compute 23 + 45 - 17`` -> ``51``; difficulty =
  number of operands (2 + difficulty).
- ``countdown``: reach a target from given numbers with + - *, e.g. numbers 3 7 25, target 35
  (any valid expression is accepted by the ``countdown`` verifier); difficulty = numbers - 1.

Each generated problem also carries its worked steps (``meta["steps"]``, a list of
``"a op b = c"`` strings) used by the pretraining corpus. Train and test splits are disjoint by
construction: a problem belongs to the test split iff a hash of its question falls in the test
bucket, whatever the seed or the sizes asked for.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from r1lab.errors import ConfigError
from r1lab.registry import Registry
from r1lab.types import Example

TaskFn = Callable[[random.Random, int], Example]
TASKS: Registry[TaskFn] = Registry("task")

TEST_BUCKETS = 10  # 1 bucket in 10 is held out


def split_of(question: str) -> str:
    digest = hashlib.sha256(question.encode()).digest()
    return "test" if digest[0] % TEST_BUCKETS == 0 else "train"


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


@TASKS.register("arith")
def make_arith(rng: random.Random, difficulty: int) -> Example:
    """``Compute a + b - c ...`` with 2 + difficulty operands; results stay in 0..999.

    Operands are at most 10 up to difficulty 1, 20 at difficulty 2, 50 at 3 and 99 beyond.
    """
    n_ops = 1 + difficulty
    hi = 10 if difficulty <= 1 else 20 if difficulty == 2 else 50 if difficulty == 3 else 99
    value = rng.randint(1, hi)
    text, steps = str(value), []
    for _ in range(n_ops):
        op = rng.choice("+-")
        b = rng.randint(1, hi)
        if op == "-" and b > value:
            op = "+"
        if op == "+" and value + b > 999:
            op = "-"
        new = _apply(value, op, b)
        steps.append(f"{value} {op} {b} = {new}")
        text += f" {op} {b}"
        value = new
    question = f"Compute {text}"
    return Example(
        id="",
        question=question,
        answer=str(value),
        verifier="number",
        task="arith",
        meta={"steps": steps, "difficulty": difficulty},
    )


@TASKS.register("countdown")
def make_countdown(rng: random.Random, difficulty: int) -> Example:
    """Numbers (2 + difficulty of them) combined left to right with + - * give the target."""
    count = 2 + difficulty
    nums = [rng.randint(1, 30) for _ in range(count)]
    value, expr, steps = nums[0], str(nums[0]), []
    for b in nums[1:]:
        op = rng.choice("+-*" if value * b <= 200 else "+-")
        if op == "-" and b > value:
            op = "+"
        new = _apply(value, op, b)
        steps.append(f"{value} {op} {b} = {new}")
        expr = (
            f"({expr}) {op} {b}"
            if op == "*" and (" + " in expr or " - " in expr)
            else f"{expr} {op} {b}"
        )
        value = new
    shown = sorted(nums)
    question = f"Using the numbers {', '.join(map(str, shown))}, make {value}"
    return Example(
        id="",
        question=question,
        answer=str(value),
        verifier="countdown",
        task="countdown",
        meta={"steps": steps, "numbers": shown, "solution": expr, "difficulty": difficulty},
    )


def generate(
    task: str, n: int, *, split: str, seed: int = 0, difficulty: int = 1, max_tries: int = 50
) -> list[Example]:
    """`n` distinct problems of `task` from `split` ('train' or 'test'), deterministic in seed."""
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    make = TASKS.get(task)
    rng = random.Random(f"{task}:{seed}:{difficulty}:{split}")
    out: list[Example] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n:
        ex = make(rng, difficulty)
        tries += 1
        if tries > max_tries * max(n, 1) * TEST_BUCKETS:
            raise ConfigError(f"task {task!r} cannot produce {n} distinct {split} problems")
        if ex.question in seen or split_of(ex.question) != split:
            continue
        seen.add(ex.question)
        out.append(
            Example(
                id=f"{task}-{split}-{len(out)}",
                question=ex.question,
                answer=ex.answer,
                verifier=ex.verifier,
                task=task,
                meta=ex.meta,
            )
        )
    return out


def generate_mix(
    tasks: tuple[str, ...], n: int, *, split: str, seed: int = 0, difficulty: int = 1
) -> list[Example]:
    """`n` problems spread evenly over `tasks`, interleaved deterministically."""
    if not tasks:
        raise ConfigError("data.tasks must name at least one task")
    per = [n // len(tasks) + (i < n % len(tasks)) for i in range(len(tasks))]
    parts = [
        generate(t, k, split=split, seed=seed, difficulty=difficulty) for t, k in zip(tasks, per)
    ]
    out = [ex for group in zip(*[p + [None] * (max(per) - len(p)) for p in parts]) for ex in group]
    return [ex for ex in out if ex is not None]
