"""`run_eval`: what ``r1lab eval`` calls. One config in, a run directory with a full report out.

The run directory holds, per benchmark (or custom source) ``<name>``: ``samples_<name>.jsonl``
(one row per sample, resumable), ``lengths_<name>.png`` (response-length histogram); and once:
``config.yaml``, ``report.json`` / ``report.md`` (protocol metrics and trace analytics side by
side). The backend is a local model (any HF causal LM or model spec) or any OpenAI-compatible
endpoint; `engines.generators.build_generator` builds its generator.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1lab.config import (
    above,
    at_least,
    constrained,
    count,
    device,
    each,
    existing_file,
    one_of,
    optional,
    registered,
    save_config,
    within,
)
from r1lab.engines.generators import EndpointConfig, build_generator
from r1lab.errors import ConfigError
from r1lab.eval.analytics import trace_stats
from r1lab.eval.benchmarks import (
    BENCHMARKS,
    MATH_INSTRUCTION,
    R1_MAX_TOKENS,
    BenchmarkSpec,
    load_benchmark,
    load_source,
    render_prompts,
)
from r1lab.eval.report import plot_histogram, print_summary, write_report
from r1lab.eval.results import EvalResult
from r1lab.eval.runner import evaluate
from r1lab.models.hf_load import DTYPES
from r1lab.rewards import REWARDS, VERIFIERS
from r1lab.rewards.extract import EXTRACTORS
from r1lab.types import SamplingParams


@constrained(
    endpoint_mode=one_of(("chat", "completions")),
    source=existing_file(),
    limit=optional(count()),
    k=optional(count()),
    max_new_tokens=optional(count()),
    temperature=at_least(0),
    top_p=within(0, 1, low_open=True),
    batch_size=count(),
    concurrency=count(),
    timeout_s=above(0),
    max_retries=count(0),
    dtype=one_of(DTYPES),
    device=device(),
    benchmarks=each(registered(BENCHMARKS)),
    verifier=optional(registered(VERIFIERS)),
    extractor=optional(registered(EXTRACTORS)),
    format_reward=optional(registered(REWARDS)),
)
@dataclass(frozen=True)
class EvalRunConfig:
    """Everything an evaluation run needs. None means "the benchmark's default"."""

    model: str = ""  # local backend: HF directory, hub id or spec (fetch:smollm2)
    endpoint: str = ""  # endpoint backend: base URL such as http://127.0.0.1:8000/v1
    endpoint_model: str = ""  # the model name sent to the endpoint (default: model)
    endpoint_mode: str = "chat"  # chat (server applies its chat template) | completions
    api_key_env: str = "OPENAI_API_KEY"  # environment variable holding the endpoint's key
    benchmarks: tuple[str, ...] = ()
    source: str = ""  # a JSONL / Parquet file or hf:NAME[:split] instead of (or with) benchmarks
    source_name: str = "custom"
    question_key: str = "question"
    answer_key: str = "answer"
    id_key: str = "id"
    verifier: str | None = None
    limit: int | None = None  # first N problems of each set
    k: int | None = None
    max_new_tokens: int | None = None
    temperature: float = 0.6
    top_p: float = 0.95
    seed: int = 0
    template: str = "chat"  # local backend: chat | r1_zero | plain
    instruction: str | None = None  # None: the benchmark's; "" for none
    force_think: bool = False
    extractor: str | None = None  # None: the benchmark's
    format_reward: str | None = None  # None: not scored (benchmarks ask for no tags)
    batch_size: int = 64  # local backend: rows per forward batch
    concurrency: int = 8  # endpoint backend: requests in flight
    timeout_s: float = 600.0
    max_retries: int = 5
    dtype: str = "float32"
    device: str = "cpu"
    output_dir: str = "runs"
    run_name: str = ""
    resume: bool = True
    progress: bool = True


def custom_spec(cfg: EvalRunConfig) -> BenchmarkSpec:
    return BenchmarkSpec(
        file=cfg.source,
        verifier=cfg.verifier or "",
        k=8,
        extractor="default",
        instruction=MATH_INSTRUCTION,
        max_new_tokens=R1_MAX_TOKENS,
    )


def eval_sets(cfg: EvalRunConfig) -> list[tuple[str, BenchmarkSpec, list]]:
    """(name, spec, examples) of every benchmark / source of the run."""
    if not cfg.benchmarks and not cfg.source:
        known = ", ".join(BENCHMARKS.names())
        raise ConfigError(f"nothing to evaluate: give benchmarks (known: {known}) or a source")
    sets = []
    for name in cfg.benchmarks:
        spec = BENCHMARKS.get(name)
        sets.append((name, spec, load_benchmark(name, limit=cfg.limit, verifier=cfg.verifier)))
    if cfg.source:
        cols = {"question": cfg.question_key, "answer": cfg.answer_key, "id": cfg.id_key}
        exs = load_source(cfg.source, columns=cols, verifier=cfg.verifier, limit=cfg.limit)
        sets.append((cfg.source_name, custom_spec(cfg), exs))
    return sets


def make_backend(cfg: EvalRunConfig):
    """(generator, tokenizer or None) for the configured backend."""
    if cfg.endpoint:
        if not (cfg.endpoint_model or cfg.model):
            raise ConfigError("an endpoint needs endpoint_model (the name the server serves)")
        endpoint = EndpointConfig(
            cfg.endpoint,
            cfg.endpoint_model or cfg.model,
            api_key_env=cfg.api_key_env if os.environ.get(cfg.api_key_env) else "",  # optional
            concurrency=cfg.concurrency,
            timeout_s=cfg.timeout_s,
            max_retries=cfg.max_retries,
        )
        return build_generator(endpoint=endpoint, mode=cfg.endpoint_mode), None
    if not cfg.model:
        raise ConfigError("nothing to evaluate: give model=DIR|HUB_ID|fetch:NAME or endpoint=URL")
    from r1lab.models.hf_load import load_causal_lm

    model, tokenizer = load_causal_lm(cfg.model, dtype=cfg.dtype, device=cfg.device)
    return build_generator(model=model, tokenizer=tokenizer, batch_size=cfg.batch_size), tokenizer


def run_eval(cfg: EvalRunConfig, *, generator=None, tokenizer=None, log=print) -> dict[str, Any]:
    """Evaluate every set of `cfg`; returns ``{"run_dir", "results": {name: EvalResult},
    "report_json", "report_md", "plots"}``. A given `generator` (and `tokenizer` for chat
    prompts) replaces the configured backend. Running again with the same ``run_name`` resumes
    (``resume=True``): finished samples are read back, not generated again.
    """
    t0 = time.time()
    sets = eval_sets(cfg)
    if generator is None:
        generator, tokenizer = make_backend(cfg)
    run_dir = Path(cfg.output_dir) / (cfg.run_name or f"eval-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    results: dict[str, EvalResult] = {}
    plots = []
    for name, spec, examples in sets:
        k = cfg.k or spec.k
        sampling = SamplingParams(
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_new_tokens=cfg.max_new_tokens or spec.max_new_tokens,
            seed=cfg.seed,
        )
        instruction = spec.instruction if cfg.instruction is None else cfg.instruction
        # a chat endpoint applies its own chat template to the user message
        template = "plain" if cfg.endpoint and cfg.endpoint_mode == "chat" else cfg.template
        prompts = render_prompts(
            examples,
            instruction=instruction or None,
            template=template,
            tokenizer=tokenizer,
            force_think=cfg.force_think,
        )
        log(
            f"[eval] {name}: {len(examples)} problems x k={k}, max {sampling.max_new_tokens} tokens"
        )
        result = evaluate(
            generator,
            examples,
            prompts=prompts,
            k=k,
            sampling=sampling,
            extractor=cfg.extractor or spec.extractor,
            format_reward=cfg.format_reward or spec.format_reward,
            out_path=run_dir / f"samples_{name}.jsonl",
            resume=cfg.resume,
            progress=cfg.progress,
        )
        tokens = [s["num_tokens"] for s in result.samples]
        stats = trace_stats([s["completion"] for s in result.samples], tokens)
        result.metrics.update({f"trace/{key}": v for key, v in stats.items()})
        plots.append(str(plot_histogram(tokens, run_dir / f"lengths_{name}.png", label="tokens")))
        results[name] = result
        m = result.metrics
        log(
            f"[eval] {name}: pass@1 {m['pass@1']:.4f} +- {m['pass@1_se']:.4f}"
            + (f", cons@{k} {m[f'cons@{k}']:.4f}" if f"cons@{k}" in m else "")
        )
    backend = cfg.model or cfg.endpoint or type(generator).__name__
    extra = {
        "backend": backend,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "seed": cfg.seed,
        "wall_seconds": round(time.time() - t0, 1),
    }
    paths = write_report(run_dir, results, extra, title=f"r1lab eval: {backend}")
    if cfg.progress:
        print_summary(results, title=f"r1lab eval: {backend}")
    log(f"[eval] report: {paths['report_md']} ({paths['report_json']}); samples in {run_dir}")
    return {"run_dir": str(run_dir), "results": results, "plots": plots, **paths}
