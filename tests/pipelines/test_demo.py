"""The demo's wiring on a test-size model: every artifact is written and report.json is readable
by scripts (the full-size demo's numbers are checked by running `r1lab demo`, not here)."""

import json

from r1lab.cli import main


def test_demo_writes_report_plot_checkpoint(tmp_path, capsys):
    code = main(
        [
            "demo",
            "r1_zero_tiny",
            "pretrain.size=test",
            "pretrain.steps=3",
            "pretrain.n_docs=200",
            "pretrain.vocab_size=400",
            "grpo.steps=1",
            "grpo.prompts_per_step=2",
            "grpo.mini_batches=2",
            "grpo.group_size=4",
            "data.n_test=4",
            "eval.k=2",
            "eval.max_new_tokens=16",
            "sampling.max_new_tokens=16",
            f"output_dir={tmp_path}",
            "run_name=d",
            "progress=false",
        ]
    )
    assert code == 0
    run = tmp_path / "d"
    report = json.loads((run / "report.json").read_text())
    for section in ("base", "final"):
        for key in ("pass@1", "cons@2", "format_rate"):
            assert 0.0 <= report[section][key] <= 1.0
    assert report["wall_seconds"] > 0
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "samples.jsonl",
        "report.md",
        "training.png",
        "eval_base.jsonl",
        "eval_final.jsonl",
        "checkpoint/model.safetensors",
    ):
        assert (run / name).exists(), name
    out = capsys.readouterr().out
    assert "pass@1" in out and "report.md" in out
