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


def test_demo_over_seeds_reports_intervals_and_reruns_a_half_finished_seed(tmp_path, capsys):
    argv = ["demo", "pretrain.size=test", "pretrain.steps=3", "pretrain.n_docs=200",
            "pretrain.vocab_size=400", "grpo.steps=2", "grpo.prompts_per_step=2", "grpo.mini_batches=2",
            "grpo.group_size=4", "data.n_test=4", "eval.k=2", "eval.max_new_tokens=8",
            "sampling.max_new_tokens=8", f"output_dir={tmp_path}", "run_name=d",
            "progress=false", "seeds=[3,5]"]  # fmt: skip
    assert main(argv) == 0
    root = tmp_path / "d-seeds"
    report = json.loads((root / "report.json").read_text())
    assert report["seeds"] == [3, 5]
    for i, seed in enumerate((3, 5)):
        own = json.loads((root / f"seed{seed}" / "report.json").read_text())
        assert f"seed: {seed}\n" in (root / f"seed{seed}" / "config.yaml").read_text()
        assert own["final"]["pass@1"] == report["metrics"]["final"]["pass@1"]["per_seed"][i]
        assert own["base"]["cons@2"] == report["metrics"]["base"]["cons@2"]["per_seed"][i]
    md = (root / "report.md").read_text()
    assert "| pass@1 | final |" in md and "final - base" in md and "final: cons@2 - pass@1" in md
    for png in ("seeds.png", "training.png"):
        assert (root / png).read_bytes()[:4] == b"\x89PNG"
    # seed 5 stopped half-way: its directory is cleared and it runs again; seed 3 is reused
    (root / "seed5" / "seed_done.json").unlink()
    (root / "seed5" / "stale.txt").write_text("from the interrupted run")
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "seed 3 (1/2) already complete" in out and "seed 5 did not finish earlier" in out
    assert "- final - base on pass@1: " in out and "report: " in out
    assert (
        not (root / "seed5" / "stale.txt").exists() and (root / "seed5" / "seed_done.json").exists()
    )
