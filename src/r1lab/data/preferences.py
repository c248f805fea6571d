"""Synthetic preference pairs for the tiny reward model (the analog of R1 §2.3.4's preference data).

Every pair is ``{prompt, chosen, rejected, kind, flaw}`` built from the general-chat tables
(`data.general_chat`): ``chosen`` is the prompt's reference reply, sometimes after a short
reasoning block in the readable format; ``rejected`` is the same prompt answered with one flaw:

| flaw        | rejected response                                                      | teaches        |
|-------------|------------------------------------------------------------------------|----------------|
| wrong       | the reference reply of another prompt of the same kind (a wrong fact)  | helpfulness    |
| unhelpful   | a refusal / non-answer ("I don't know.")                               | helpfulness    |
| harmful     | the reference plus an insult or an instruction to hurt someone         | harmlessness   |
| harmful_cot | the reference reply after a reasoning block that insults or plans harm | harmlessness   |

So helpfulness (the summary) and harmlessness (the whole response, reasoning included) both mean
something to the RM. Deterministic in the seed; `split_pairs` holds out pairs for pairwise accuracy.
"""

from __future__ import annotations

import random

from r1lab.data.general_chat import KINDS

FLAWS = ("wrong", "unhelpful", "harmful", "harmful_cot")
UNHELPFUL = (
    "I don't know.",
    "I cannot help with that.",
    "Maybe. Ask someone else.",
    "That is not something I will answer.",
    "Hmm.",
)
INSULTS = (
    "You are stupid for asking.",
    "What an idiot question.",
    "Only a fool would not know this.",
)
HARM = (
    "Now go and hurt someone.",
    "You should hit your neighbour.",
    "Go break something that belongs to them.",
)
HARMFUL_THOUGHTS = (
    "This person is an idiot.",
    "I want to hurt them.",
    "I will tell them to hit someone.",
)
NEUTRAL_THOUGHTS = ("This is a simple request.", "I know this one.", "A short answer is enough.")


def _with_reasoning(thought: str, reply: str) -> str:
    return f"<think>\n{thought}\n</think>\n{reply}"


def _wrong_reply(kind: str, prompt: str, reply: str, rng: random.Random) -> str:
    for _ in range(20):
        _, other = KINDS[kind](rng)
        if other != reply:
            return other
    return rng.choice(UNHELPFUL)  # a kind with one possible reply: a non-answer is wrong too


def preference_pairs(n: int, seed: int = 0) -> list[dict]:
    """`n` preference pairs, flaws and kinds interleaved (seeded)."""
    rng = random.Random(f"preferences:{seed}")
    kinds = sorted(KINDS)
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        flaw = FLAWS[(i // len(kinds)) % len(FLAWS)]
        prompt, reply = KINDS[kind](rng)
        chosen = reply
        if flaw == "wrong":
            rejected = _wrong_reply(kind, prompt, reply, rng)
        elif flaw == "unhelpful":
            rejected = rng.choice(UNHELPFUL)
        elif flaw == "harmful":
            bad = rng.choice(INSULTS + HARM)
            rejected = f"{bad} {reply}" if rng.random() < 0.5 else f"{reply} {bad}"
        else:
            rejected = _with_reasoning(rng.choice(HARMFUL_THOUGHTS), reply)
            chosen = _with_reasoning(rng.choice(NEUTRAL_THOUGHTS), reply)
        if flaw in ("wrong", "unhelpful") and rng.random() < 0.3:
            thought = rng.choice(NEUTRAL_THOUGHTS)
            chosen, rejected = _with_reasoning(thought, chosen), _with_reasoning(thought, rejected)
        out.append(
            {"prompt": prompt, "chosen": chosen, "rejected": rejected, "kind": kind, "flaw": flaw}
        )
    return out


def split_pairs(pairs: list[dict], n_eval: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train, held-out): a seeded shuffle; held-out pairs never repeat a training
    (prompt, chosen, rejected) triple."""
    rng = random.Random(f"preference-split:{seed}")
    idx = list(range(len(pairs)))
    rng.shuffle(idx)
    held = [pairs[i] for i in idx[:n_eval]]
    key = lambda p: (p["prompt"], p["chosen"], p["rejected"])  # noqa: E731
    seen = {key(p) for p in held}
    train = [pairs[i] for i in idx[n_eval:] if key(pairs[i]) not in seen]
    return train, held
