"""Rejection sampling (R1 §2.3.3): k samples per prompt -> keep the verified ones -> filter ->
dedupe -> cap per prompt -> an SFT-ready dataset with provenance on every row.

The loop, in reading order: prompts are cut into fixed chunks; chunk c is sampled with seed
``seed * 1_000_003 + c`` (from a checkpoint on ``rollout.engine`` hf | vllm, or from a teacher
behind an OpenAI-compatible endpoint: `engines.generators`), graded with the reward spec
(`score_completions`), and each sample goes through: correct? (``keep_component`` >=
``min_score``, no error) -> `data.filters` in order -> duplicate of a kept sample of the same
question? -> per-prompt cap. Kept rows are committed chunk by chunk to `rs_store.RSStore`, so a
run killed at any moment and started again ends with exactly the dataset of an uninterrupted run
(with a seeded local generator; an endpoint that ignores seeds still loses and duplicates nothing).

Each row: ``id, question, answer, verifier, task, meta`` (JSON of the task fields), ``prompt``
(the rendered prompt), ``completion``, ``messages`` (chat template only) and ``provenance``
(model, checkpoint step, sampling parameters, reward components, sample index, chunk).

Nothing the sampler produced is thrown away: every sample, kept or not, is committed with its
chunk to ``RUN/samples.jsonl`` (`sample_records`), with its ``verdict``, ``extracted`` answer,
reward scores and ``rejected_by``: ``no_answer`` / ``wrong_answer`` / ``reward_error`` (not
correct), ``filter/NAME``, ``duplicate``, ``over_cap``, or None when kept, and ``detail`` (the
verifier's or the filter's words). `rs_regrade.regrade` grades those records again with new
settings and no generation; the end-of-run line names the most common rejection.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from r1lab.config import save_config, to_dict, validate
from r1lab.data.filters import Candidate, check_filters, first_failure
from r1lab.data.readable import reasoning_and_summary
from r1lab.engines.generators import build_generator
from r1lab.engines.vllm import require_vllm
from r1lab.errors import ConfigError
from r1lab.pipelines.common import make_run_dir, prompts_for, seed_everything, task_examples
from r1lab.pipelines.rs_config import RSConfig
from r1lab.pipelines.rs_store import RSStore, write_dataset
from r1lab.rewards.base import Completion
from r1lab.rewards.combine import check_spec, score_completions
from r1lab.types import Example, Rollout, SamplingParams
from r1lab.utils.progress import progress_bar

STAT_KEYS = ("samples", "incorrect", "kept", "duplicate", "over_cap", "reward_errors")
SAMPLES_FILE = "samples.jsonl"  # every sample, in the run directory
# why a sample was not kept (besides "filter/NAME"), in the words of the end-of-run line
REJECTIONS = {
    "no_answer": "no answer extracted",
    "wrong_answer": "wrong answer",
    "reward_error": "the verifier failed",
    "duplicate": "duplicate of a kept sample",
    "over_cap": "over the per-prompt cap",
}


@dataclass
class RSResult:
    run_dir: Path
    dataset: Path
    rows: int
    stats: dict[str, int]
    wall_seconds: float
    sft_prompt_format: str  # how `sft` must read the rows: "chat" (messages) or "raw"
    samples: Path | None = None  # every sample with its verdict (``samples.jsonl``)
    rejections: dict[str, int] = field(default_factory=dict)  # reason -> count, most common first


def sampling_for_chunk(cfg: RSConfig, chunk: int) -> SamplingParams:
    return cfg.sampling.params(cfg.seed * 1_000_003 + chunk)


def fingerprint(cfg: RSConfig, prompts: list[str], model_id: str) -> str:
    """Hash of everything that decides the dataset (not progress, threads or paths)."""
    decisive = {
        k: v
        for k, v in to_dict(cfg).items()
        if k not in ("progress", "threads", "output_dir", "run_name")
    }
    blob = json.dumps([decisive, prompts, model_id], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def num_tokens(r: Rollout) -> int:
    """Completion tokens: the ids of a local sampler, the server's count for an endpoint."""
    return len(r.completion_ids) or int(getattr(r, "num_tokens", 0))


def sample_records(
    rollouts: list[Rollout], examples: list[Example], first: int, chunk: int
) -> list[dict]:
    """One record per rollout of a chunk: the task row, the prompt, the completion and the
    generation facts (everything grading and the filters read, so ``--regrade`` needs no model)."""
    out = []
    for r in rollouts:
        ex = examples[first + r.prompt_index]
        out.append(
            {
                "id": ex.id,
                "question": ex.question,
                "answer": ex.answer,
                "verifier": ex.verifier,
                "task": ex.task,
                "meta": ex.meta,
                "chunk": chunk,
                "prompt_index": r.prompt_index,
                "sample_index": r.sample_index,
                "prompt": r.prompt,
                "completion": r.text,
                "finish_reason": r.finish_reason,
                "truncated": r.truncated,
                "num_tokens": num_tokens(r),
            }
        )
    return out


def example_of(s: dict) -> Example:
    return Example(s["id"], s["question"], s["answer"], s["verifier"], s["task"], s["meta"])


def select_rows(
    cfg: RSConfig,
    samples: list[dict],
    seen: set[tuple[str, str]],
    provenance: dict,
    stats: dict[str, int],
) -> list[dict]:
    """Grade one chunk's sample records and return the rows to keep, in (prompt, sample) order.

    Each record gets its verdict in place: ``verdict`` (correct / incorrect / error), ``score``,
    ``extracted`` (the keep component's answer), ``error``, ``rewards``, ``reward_total``,
    ``kept``, ``rejected_by`` (one of `REJECTIONS` or ``filter/NAME``; None when kept) and
    ``detail`` (the verifier's or filter's own words).
    """
    completions = [
        Completion(
            s["completion"],
            example_of(s).as_row(),
            s["num_tokens"],
            s["truncated"],
            cfg.sampling.max_new_tokens,
        )
        for s in samples
    ]
    table = score_completions(cfg.rewards, completions, [s["prompt_index"] for s in samples])
    stats["reward_errors"] += table.num_errors
    kept_per_prompt: dict[int, int] = {}
    rows = []
    for b, s in enumerate(samples):
        stats["samples"] += 1
        verdict = table.results[cfg.keep_component][b]
        correct = verdict.error is None and verdict.score >= cfg.min_score
        s.update(
            verdict="correct" if correct else "incorrect" if verdict.error is None else "error",
            score=verdict.score,
            extracted=verdict.extracted,
            error=verdict.error,
            rewards={name: scores[b] for name, scores in table.components.items()},
            reward_total=table.total[b],
            kept=False,
            rejected_by=None,
            detail=verdict.error or verdict.info.get("reason"),
        )
        if not correct:
            stats["incorrect"] += 1
            s["rejected_by"] = (
                "reward_error"
                if verdict.error is not None
                else "no_answer"
                if verdict.extracted is None
                else "wrong_answer"
            )
            continue
        reasoning, summary = reasoning_and_summary(
            s["completion"], cfg.reasoning.open_tag, cfg.reasoning.close_tag
        )
        cand = Candidate(s["completion"], reasoning, summary, s["num_tokens"], s["truncated"])
        failed = first_failure(cand, cfg.filters)
        if failed is not None:
            stats[f"filter/{failed[0]}"] = stats.get(f"filter/{failed[0]}", 0) + 1
            s.update(rejected_by=f"filter/{failed[0]}", detail=failed[1])
            continue
        key = (s["question"], normalized(s["completion"]))
        if cfg.dedupe and key in seen:
            stats["duplicate"] += 1
            s["rejected_by"] = "duplicate"
            continue
        n_kept = kept_per_prompt.get(s["prompt_index"], 0)
        if cfg.max_per_prompt and n_kept >= cfg.max_per_prompt:
            stats["over_cap"] += 1
            s["rejected_by"] = "over_cap"
            continue
        kept_per_prompt[s["prompt_index"]] = n_kept + 1
        seen.add(key)
        stats["kept"] += 1
        s["kept"] = True
        rows.append(make_row(cfg, s, provenance))
    return rows


def make_row(cfg: RSConfig, s: dict, provenance: dict) -> dict:
    """The SFT-ready row of a kept (graded) sample record."""
    row = {
        "id": s["id"],
        "question": s["question"],
        "answer": s["answer"],
        "verifier": s["verifier"],
        "task": s["task"],
        "meta": json.dumps(s["meta"], sort_keys=True, default=str),
        "prompt": s["prompt"],
        "completion": s["completion"],
        "provenance": {
            **provenance,
            "chunk": s["chunk"],
            "sample_index": s["sample_index"],
            "finish_reason": s["finish_reason"],
            "num_tokens": s["num_tokens"],
            "rewards": s["rewards"],
            "reward_total": s["reward_total"],
        },
    }
    if cfg.data.template == "chat":
        row["messages"] = [
            {"role": "user", "content": s["question"]},
            {"role": "assistant", "content": s["completion"]},
        ]
    return row


def rejection_counts(samples: list[dict]) -> dict[str, int]:
    """``{reason: count}`` over the rejected samples, most common first."""
    return dict(Counter(s["rejected_by"] for s in samples if s.get("rejected_by")).most_common())


def top_rejection(rejections: dict[str, int]) -> str:
    """ "most common rejection: no answer extracted (no_answer, 30 of 32 rejected)" or ""."""
    if not rejections:
        return ""
    reason, n = next(iter(rejections.items()))
    words = REJECTIONS.get(reason) or f"filter {reason.split('/', 1)[-1]}"
    return f"most common rejection: {words} ({reason}, {n} of {sum(rejections.values())} rejected)"


def check_config(cfg: RSConfig) -> None:
    """Config errors that need no data: reward spec, filters, keep component, sizes, engine."""
    check_spec(cfg.rewards)
    check_filters(cfg.filters)
    if cfg.keep_component not in [c.name for c in cfg.rewards]:
        raise ConfigError(f"keep_component {cfg.keep_component!r} is not in the reward spec")
    validate(cfg)  # the load-time checks, for a config built in code (R1, distillation)
    if cfg.rollout.engine == "vllm" and not cfg.teacher.base_url:
        require_vllm()  # no vLLM or no GPU: one line, before any model is loaded


def checkpoint_step(path: str) -> int | None:
    """The training step a checkpoint records (r1lab_state.json, step-N name, or metrics.jsonl)."""
    p = Path(path)
    if (p / "r1lab_state.json").exists():
        return json.loads((p / "r1lab_state.json").read_text()).get("step")
    m = re.search(r"step-?(\d+)$", p.name)
    if m:
        return int(m.group(1))
    metrics = p.parent / "metrics.jsonl"
    if metrics.exists():
        lines = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
        steps = [row["step"] for row in lines if "step" in row]
        return max(steps) + 1 if steps else None
    return None


def make_generator(cfg: RSConfig, model=None, tokenizer=None, log=print, run_dir=None):
    """(generator, tokenizer or None, provenance) for the configured sampler (vllm: its engine's
    files go to RUN/vllm_engine)."""
    if cfg.teacher.base_url:
        mode = "chat" if cfg.data.template == "chat" else "completions"
        gen = build_generator(cfg.rollout, endpoint=cfg.teacher, mode=mode)
        prov = {"model": cfg.teacher.model, "endpoint": cfg.teacher.base_url}
        return gen, None, {**prov, "checkpoint_step": cfg.checkpoint_step}
    from r1lab.pipelines.common import load_model

    if model is None:
        model, tokenizer = load_model(
            cfg.model.path,
            pretrain_cfg=cfg.pretrain,
            dtype=cfg.model.dtype,
            device=cfg.model.device,
            log=log,
        )
    step = cfg.checkpoint_step if cfg.checkpoint_step >= 0 else checkpoint_step(cfg.model.path)
    gen = build_generator(
        cfg.rollout,
        model=model,
        tokenizer=tokenizer,
        batch_size=cfg.sampling.batch_size,
        workdir=Path(run_dir or cfg.output_dir) / "vllm_engine",
        seed=cfg.seed,
    )
    return gen, tokenizer, {"model": cfg.model.path, "checkpoint_step": step}


def run(
    cfg: RSConfig,
    *,
    run_dir: Path | None = None,
    model=None,
    tokenizer=None,
    examples: list[Example] | None = None,
    generator=None,
    log=print,
) -> RSResult:
    """Sample, grade, filter and write the dataset; resumes a killed run in the same run_dir.

    `model`/`tokenizer`, or any `generator` (with the `tokenizer` that renders its prompts), may
    be passed in instead of loading ``model.path``.
    """
    t0 = time.time()
    check_config(cfg)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    examples = examples if examples is not None else task_examples(cfg.data, cfg.split)
    examples = examples[: cfg.n_prompts] if cfg.n_prompts else examples
    run_dir = run_dir or make_run_dir(cfg.output_dir, cfg.run_name, "sample", cfg)
    if generator is None:
        generator, tokenizer, provenance = make_generator(cfg, model, tokenizer, log, run_dir)
    else:
        provenance = {"model": type(generator).__name__, "checkpoint_step": cfg.checkpoint_step}
    if tokenizer is None and cfg.data.template == "chat":  # the endpoint applies its template
        prompts = [ex.question for ex in examples]
    else:
        prompts = prompts_for(examples, cfg.data.template, tokenizer)
    provenance = {
        **provenance,
        "sampling": asdict(sampling_for_chunk(cfg, 0)) | {"seed": f"{cfg.seed} * 1000003 + chunk"},
        "template": cfg.data.template,
        "source": "rejection_sampling",
    }
    store = RSStore(
        run_dir / "rs",
        fingerprint(cfg, prompts, str(provenance["model"])),
        run_dir / SAMPLES_FILE,
        provenance,
    )
    save_config(cfg, store.config_path)
    n_chunks = -(-len(examples) // cfg.prompts_per_chunk)
    stats = {k: 0 for k in STAT_KEYS} | store.state["stats"]
    seen = {(r["question"], normalized(r["completion"])) for r in store.committed_rows()}
    if store.chunks_done:
        log(
            f"[sample] resuming at chunk {store.chunks_done}/{n_chunks} ({store.state['rows']} rows)"
        )
    with progress_bar("sample", n_chunks, cfg.progress) as advance:
        advance(store.chunks_done)
        for c in range(store.chunks_done, n_chunks):
            first = c * cfg.prompts_per_chunk
            chunk = prompts[first : first + cfg.prompts_per_chunk]
            rollouts = generator.generate(chunk, cfg.k, sampling_for_chunk(cfg, c))
            samples = sample_records(rollouts, examples, first, c)
            rows = select_rows(cfg, samples, seen, provenance, stats)
            store.commit(rows, stats, samples)
            advance(info=f"kept {stats['kept']}/{stats['samples']}")
    return finish(cfg, run_dir, store, stats, len(examples), t0, log)


def finish(cfg: RSConfig, run_dir: Path, store: RSStore, stats, n_prompts: int, t0: float, log):
    """Write the dataset and the summary of a run whose chunks are all committed."""
    rows = store.committed_rows()
    out_path = run_dir / cfg.output
    write_dataset(rows, out_path)
    store.mark_complete()
    rejections = rejection_counts(store.committed_samples())
    summary = {
        "rows": len(rows),
        "prompts": n_prompts,
        "k": cfg.k,
        "stats": stats,
        "rejections": rejections,
        "dataset": str(out_path),
        "samples": str(store.samples_path),
        "provenance": store.state["provenance"],
    }
    (run_dir / "sample_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    fmt = "chat" if cfg.data.template == "chat" else "raw"
    top = top_rejection(rejections)
    log(
        f"[sample] kept {len(rows)} of {stats['samples']} samples -> {out_path}"
        + (f"; {top}" if top else "")
        + f"; every sample with its verdict: {store.samples_path}"
    )
    return RSResult(
        run_dir, out_path, len(rows), stats, time.time() - t0, fmt, store.samples_path, rejections
    )
