"""A small, real `Generator` that replays scripted completions (a test double for the runner).

It is not a stub of generation: the runner's job is bookkeeping (chunking, grading, metrics,
JSONL, resume), and a generator whose outputs are known lets the tests hand-compute every metric.
Real sampling is covered by the tests that run `HFGenerator` on a tiny random model.
"""

from __future__ import annotations

from collections.abc import Sequence

from r1lab.types import Rollout, SamplingParams

TRUNCATE = "<<truncated>>"  # a scripted completion containing this is returned as cut by length


class ReplayGenerator:
    """Returns ``script[prompt][j]`` as sample j of `prompt`; records every call.

    ``fail_after`` = number of successful `generate` calls before it raises (an interruption).
    """

    def __init__(self, script: dict[str, list[str]], *, batch_size: int = 64, fail_after=None):
        self.script = script
        self.batch_size = batch_size
        self.fail_after = fail_after
        self.calls: list[tuple[list[str], int, SamplingParams]] = []

    def generate(self, prompts: Sequence[str], n: int, sampling: SamplingParams) -> list[Rollout]:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("generator interrupted")
        self.calls.append((list(prompts), n, sampling))
        out = []
        for i, p in enumerate(prompts):
            for j in range(n):
                text = self.script[p][j]
                words = text.replace(TRUNCATE, "").split()
                out.append(
                    Rollout(
                        prompt_index=i,
                        sample_index=j,
                        prompt=p,
                        prompt_ids=[1, 2, 3],
                        completion_ids=list(range(len(words))),
                        text=text.replace(TRUNCATE, ""),
                        logprobs=[0.0] * len(words),
                        finish_reason="length" if TRUNCATE in text else "stop",
                    )
                )
        return out
