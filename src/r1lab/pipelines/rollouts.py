"""Collect one step's scored rollouts: generate G samples per prompt, score them, and (DAPO
dynamic sampling) drop groups whose scores are all equal, generating more until the batch holds
`prompts_per_step` informative groups or `max_gen_rounds` is exceeded (a clear error then). The
score that decides is one reward component's (DAPO: accuracy) or the total reward."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from r1lab.algo import informative_groups
from r1lab.errors import ConfigError, R1LabError
from r1lab.rewards.base import Completion
from r1lab.rewards.combine import RewardComponent, RewardTable, score_completions
from r1lab.types import Example, Rollout, SamplingParams


class DynamicSamplingExhausted(R1LabError):
    """Dynamic sampling could not fill the batch within the allowed generation rounds."""


@dataclass
class StepRollouts:
    rollouts: list[Rollout]  # prompt-major, G consecutive samples per prompt
    completions: list[Completion]
    table: RewardTable
    rounds: int  # generation rounds used
    zero_variance_frac: float  # share of generated groups whose rewards were all equal
    generated: int  # rollouts generated (including dropped groups)


def filter_scores(table: RewardTable, metric: str) -> list[float]:
    """The per-rollout scores dynamic sampling filters groups on: component `metric`'s, or the
    total reward for ``metric == "reward"``."""
    return table.total if metric == "reward" else table.components[metric]


def check_filter_metric(spec: Sequence[RewardComponent], metric: str) -> None:
    names = [c.name for c in spec]
    if metric != "reward" and metric not in names:
        raise ConfigError(
            f"grpo.dynamic_sampling_metric={metric!r} is not a reward component of this run "
            f"({', '.join(names)}); name one of them, or 'reward' for the total reward"
        )


def subset_table(table: RewardTable, idx: Sequence[int]) -> RewardTable:
    return RewardTable(
        total=[table.total[i] for i in idx],
        components={k: [v[i] for i in idx] for k, v in table.components.items()},
        results={k: [v[i] for i in idx] for k, v in table.results.items()},
        errors={k: sum(table.results[k][i].error is not None for i in idx) for k in table.results},
        timeouts={
            k: sum(bool(table.results[k][i].info.get("timeout")) for i in idx)
            for k in table.results
        },
    )


def collect_step(
    generate: Callable[[list[str], int, SamplingParams], list[Rollout]],
    next_prompts: Callable[[int], list[tuple[str, Example]]],
    spec: Sequence[RewardComponent],
    *,
    prompts_per_step: int,
    group_size: int,
    sampling: Callable[[int], SamplingParams],
    max_new_tokens: int,
    dynamic_sampling: bool = False,
    max_gen_rounds: int = 4,
    filter_metric: str = "reward",
) -> StepRollouts:
    """`next_prompts(n)` yields the next n (prompt text, example) pairs of the data stream;
    `sampling(round)` gives the sampling parameters of each generation round; `filter_metric`
    names the score dynamic sampling filters on (`filter_scores`); `zero_variance_frac` counts
    the generated groups whose TOTAL rewards are all equal (advantage 0)."""
    kept: list[tuple[Rollout, Completion]] = []
    tables: list[tuple[RewardTable, list[int]]] = []
    n_groups = n_zero = generated = rounds = 0
    while len(kept) < prompts_per_step * group_size:
        if rounds >= max(1, max_gen_rounds if dynamic_sampling else 1):
            raise DynamicSamplingExhausted(
                f"dynamic sampling found only {len(kept) // group_size} of {prompts_per_step} "
                f"groups with differing {filter_metric} in {rounds} rounds: every other group scored "
                "all-equal (the task is too easy or too hard for the model); raise "
                "grpo.max_gen_rounds, change the data difficulty, or turn dynamic sampling off"
            )
        batch = next_prompts(prompts_per_step)
        rollouts = generate([p for p, _ in batch], group_size, sampling(rounds))
        rounds += 1
        generated += len(rollouts)
        completions = [
            Completion(
                text=r.text,
                row=batch[r.prompt_index][1].as_row(),
                num_tokens=len(r.completion_ids),
                truncated=r.truncated,
                max_tokens=max_new_tokens,
            )
            for r in rollouts
        ]
        table = score_completions(spec, completions, [r.prompt_index for r in rollouts])
        varied_G = informative_groups(torch.tensor(table.total), group_size)
        n_groups += len(varied_G)
        n_zero += int((~varied_G).sum())
        keep_G = torch.ones_like(varied_G)
        if dynamic_sampling:
            keep_G = informative_groups(
                torch.tensor(filter_scores(table, filter_metric)), group_size
            )
        for g in keep_G.nonzero().flatten().tolist():
            rows = range(g * group_size, (g + 1) * group_size)
            kept += [(rollouts[i], completions[i]) for i in rows]
            tables.append((table, list(rows)))
    kept = kept[: prompts_per_step * group_size]
    merged = merge_tables([subset_table(t, rows) for t, rows in tables])
    merged = subset_table(merged, list(range(len(kept))))
    return StepRollouts(
        rollouts=[r for r, _ in kept],
        completions=[c for _, c in kept],
        table=merged,
        rounds=rounds,
        zero_variance_frac=n_zero / max(1, n_groups),
        generated=generated,
    )


def merge_tables(tables: list[RewardTable]) -> RewardTable:
    first = tables[0]
    return RewardTable(
        total=[x for t in tables for x in t.total],
        components={k: [x for t in tables for x in t.components[k]] for k in first.components},
        results={k: [x for t in tables for x in t.results[k]] for k in first.results},
        errors={k: sum(t.errors[k] for t in tables) for k in first.errors},
        timeouts={k: sum(t.timeouts.get(k, 0) for t in tables) for k in first.errors},
    )
