"""``r1lab sample --regrade RUN``: grade and filter a finished run's stored samples again.

Nothing is generated: the samples of ``RUN/samples.jsonl`` (every completion, with the task row
and the generation facts) go through the same `rejection_sampling.select_rows` as during the run,
chunk by chunk in the original order, under the run's config (``RUN/rs/config.yaml``) with the
given overrides. Only grading and filtering settings may change (``rewards``, ``keep_component``,
``min_score``, ``filters``, ``reasoning``, ``dedupe``, ``max_per_prompt``, ``output``); an override
of anything that decided the generation (model, teacher, data, sampling, k, seed...) is an error,
since the stored samples did not come from it. The result is the dataset a fresh run with the new
settings would have written from the same completions: the samples file, the kept rows, the
dataset, the summary and the stored config are rewritten, and the store's fingerprint becomes the
regraded config's, so a later ``r1lab sample`` into the same run directory refuses to mix runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from r1lab.config import load_config, save_config, to_dict
from r1lab.errors import ConfigError, DataError
from r1lab.pipelines.rejection_sampling import (
    SAMPLES_FILE,
    STAT_KEYS,
    RSResult,
    check_config,
    finish,
    select_rows,
)
from r1lab.pipelines.rs_config import RSConfig
from r1lab.pipelines.rs_store import RSStore

# config sections that decided which completions exist: a regrade must leave them as they were
GENERATION_KEYS = (
    "seed",
    "model",
    "pretrain",
    "teacher",
    "data",
    "split",
    "n_prompts",
    "sampling",
    "k",
    "prompts_per_chunk",
    "checkpoint_step",
)


def regrade(run_dir: str | Path, overrides: list[str] | None = None, *, log=print) -> RSResult:
    """Re-apply grading and filters to the stored samples of a finished run; no generation."""
    t0 = time.time()
    run_dir = Path(run_dir)
    store_dir = run_dir / "rs"
    state_path, config_path = store_dir / "state.json", store_dir / "config.yaml"
    if not state_path.exists() or not config_path.exists():
        raise DataError(
            f"{run_dir} is not a rejection-sampling run directory "
            f"(no {state_path.relative_to(run_dir)} / {config_path.relative_to(run_dir)})"
        )
    state = json.loads(state_path.read_text())
    if not state.get("complete"):
        raise ConfigError(
            f"{run_dir}: the run is not finished ({state.get('chunks_done', 0)} chunks "
            "committed); resume it with the same `r1lab sample` command first, then regrade"
        )
    old = load_config(RSConfig, str(config_path))
    cfg = load_config(RSConfig, str(config_path), list(overrides or []))
    changed = [k for k in GENERATION_KEYS if to_dict(getattr(old, k)) != to_dict(getattr(cfg, k))]
    if changed:
        raise ConfigError(
            f"--regrade re-applies grading and filters only; {', '.join(changed)} decided the "
            "generation of the stored samples and cannot change (start a new run for that)"
        )
    check_config(cfg)
    store = RSStore(store_dir, state["fingerprint"], run_dir / SAMPLES_FILE)
    samples = store.committed_samples()
    if not samples:
        raise DataError(
            f"{store.samples_path}: no stored samples (the run was made before r1lab stored "
            "every sample); run it again to regrade it later"
        )
    provenance = state.get("provenance") or {}
    stats = {k: 0 for k in STAT_KEYS}
    seen: set[tuple[str, str]] = set()
    rows: list[dict] = []
    for chunk in sorted({s["chunk"] for s in samples}):
        rows += select_rows(
            cfg, [s for s in samples if s["chunk"] == chunk], seen, provenance, stats
        )
    grading = json.dumps(to_dict(cfg), sort_keys=True, default=str)
    fingerprint = hashlib.sha256(f"{state['fingerprint']}|{grading}".encode()).hexdigest()[:16]
    store.replace_all(rows, samples, stats, fingerprint)
    save_config(cfg, config_path)
    n_prompts = len({(s["chunk"], s["prompt_index"]) for s in samples})
    log(f"[sample] regraded {len(samples)} stored samples of {run_dir} (nothing generated)")
    return finish(cfg, run_dir, store, stats, n_prompts, t0, log)
