"""The synthetic pretraining corpus: our analog of DeepSeek-V3-Base's web data.

Each document is a problem with a free-form worked solution in one of several styles. Only a
minority of documents use ``<think>``/``<answer>`` tags, some solutions are wrong and some skip the
steps, so the pretrained base model can often solve problems but follows the R1-Zero output format
only some of the time: RL has something to find (the right format) and something to teach (write
the steps, get them right).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from r1lab.data.tasks import TASKS, split_of
from r1lab.data.templates import R1_ZERO_TEMPLATE
from r1lab.types import Example


@dataclass(frozen=True)
class CorpusMix:
    """Shares of document styles (they need not sum to 1; they are normalized)."""

    r1_zero_tagged: float = (
        0.04  # R1-Zero template, then <think> steps </think> <answer> x </answer>
    )
    r1_zero_untagged: float = 0.16  # R1-Zero template, then a free-form solution without tags
    qa: float = 0.25  # "Question: ... Answer: ..." styles
    chat: float = 0.05  # the tokenizer's chat format
    bare: float = 0.20  # the problem and steps with no framing
    # Lines of worked facts ("12 + 7 = 19.") with no question, so their operands cannot be
    # predicted. At a 0.30 share (a third of the tokens) the 1M base, 800 steps, did not learn to
    # copy the next operand from the question ("Compute 8 - 2 - 3" -> "8 - 2 = 6. 6 - 3 = 3."):
    # teacher-forced, the second operand was right 28% of the time; at 0.10, 100%.
    drill: float = 0.10
    wrong_rate: float = 0.08  # share of solutions with an arithmetic slip
    no_steps_rate: float = 0.15  # share of solutions that state an answer without steps


def worked_steps(ex: Example, rng: random.Random, wrong: bool) -> tuple[list[str], str]:
    """The example's steps (possibly with one slip propagated) and the final answer they reach."""
    steps = list(ex.meta["steps"])
    if not wrong:
        return steps, ex.answer
    k = rng.randrange(len(steps))
    out: list[str] = []
    carry: int | None = None
    for i, step in enumerate(steps):
        lhs, _ = step.split(" = ")
        a, op, b = lhs.split(" ")
        a_val = carry if carry is not None else int(a)
        val = eval_step(a_val, op, int(b))  # noqa: S307 - three tokens we built ourselves
        if i == k:
            val += rng.choice([-10, -2, -1, 1, 2, 10])
        out.append(f"{a_val} {op} {b} = {val}")
        carry = val
    return out, str(carry)


def _more_steps(ex: Example, rng: random.Random, n: int = 6) -> list[str]:
    """Extra facts of the same kind as the example's steps, for drill documents."""
    from r1lab.data.tasks import TASKS

    out: list[str] = []
    while len(out) < n:
        out += TASKS.get(ex.task)(rng, ex.meta.get("difficulty", 1)).meta["steps"]
    return out[:n]


def eval_step(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def final_text(ex: Example, answer: str) -> str:
    """The answer as the task states it: a number, or the Countdown expression."""
    if ex.task == "countdown":
        return ex.meta["solution"] if answer == ex.answer else answer
    return answer


def r1_zero_completion(steps: list[str], answer: str) -> str:
    """`` <think> s1. s2. </think> <answer> x </answer>`` (leading space after 'Assistant:')."""
    think = " ".join(f"{s}." for s in steps) if steps else "I know this one."
    return f" <think> {think} </think> <answer> {answer} </answer>"


def free_solution(steps: list[str], answer: str, rng: random.Random) -> str:
    lead = rng.choice(["", "Let's compute. ", "Step by step: ", "Working: ", "We calculate. "])
    body = " ".join(f"{s}." for s in steps)
    close = rng.choice(
        ["The answer is {a}.", "So the result is {a}.", "Answer: {a}", "= {a}", "Final: {a}."]
    ).format(a=answer)
    return f"{lead}{body} {close}".strip()


def document(ex: Example, style: str, rng: random.Random, mix: CorpusMix, chat_fmt) -> str:
    wrong = rng.random() < mix.wrong_rate
    steps, answer = worked_steps(ex, rng, wrong)
    answer = final_text(ex, answer)
    if rng.random() < mix.no_steps_rate:
        steps = []
    if style == "drill":
        return " ".join(f"{s}." for s in ex.meta["steps"] + _more_steps(ex, rng))
    if style == "r1_zero_tagged":
        return R1_ZERO_TEMPLATE.format(prompt=ex.question) + r1_zero_completion(steps, answer)
    if style == "r1_zero_untagged":
        return R1_ZERO_TEMPLATE.format(prompt=ex.question) + " " + free_solution(steps, answer, rng)
    if style == "qa":
        q = rng.choice(["Question: {q}?\nAnswer: ", "Q: {q}.\nA: ", "Problem: {q}.\nSolution: "])
        return q.format(q=ex.question) + free_solution(steps, answer, rng)
    if style == "chat":
        return chat_fmt(ex.question, free_solution(steps, answer, rng))
    return f"{ex.question}. " + free_solution(steps, answer, rng)


def build_corpus(
    n_docs: int,
    *,
    tasks: tuple[str, ...],
    difficulty: int,
    seed: int,
    chat_fmt,
    mix: CorpusMix | None = None,
) -> list[str]:
    """`n_docs` documents over train-split problems only (held-out problems never appear).

    `chat_fmt(question, answer) -> str` renders one user/assistant exchange in the model's chat
    format (the tokenizer is built from this corpus, so it is passed in rather than imported).
    """
    mix = mix or CorpusMix()
    rng = random.Random(f"corpus:{seed}")
    styles = ["r1_zero_tagged", "r1_zero_untagged", "qa", "chat", "bare", "drill"]
    weights = [getattr(mix, s) for s in styles]
    docs = []
    while len(docs) < n_docs:
        # Difficulties 0..difficulty, so the base model also sees easier problems.
        ex = TASKS.get(rng.choice(tasks))(rng, rng.randint(0, difficulty))
        if split_of(ex.question) != "train":
            continue
        docs.append(document(ex, rng.choices(styles, weights)[0], rng, mix, chat_fmt))
    return docs
