"""`r1lab compare` on a random "test"-size model: 2 steps per recipe, tiny held-out evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from r1lab import cli
from r1lab.errors import ConfigError
from r1lab.eval.results import load_result
from r1lab.pipelines import compare

TINY = [
    "threads=1",
    "progress=false",
    "grpo.prompts_per_step=2",
    "grpo.mini_batches=2",
    "grpo.group_size=4",
    "data.n_train=16",
    "data.n_test=3",
    "sampling.max_new_tokens=8",
    "eval.k=2",
    "eval.max_new_tokens=8",
]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_compare_trains_each_recipe_from_the_same_start_and_writes_plot_and_table(
    tmp_path, tiny_model, tiny_tokenizer
):
    start = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}
    result = compare.run(
        ["r1_zero_tiny", "dr_grpo_tiny"], overrides=TINY, steps=2, out_dir=tmp_path,
        model=tiny_model, tokenizer=tiny_tokenizer, log=lambda _: None,
    )  # fmt: skip
    assert [r.name for r in result.runs] == ["r1_zero_tiny", "dr_grpo_tiny"]
    # the caller's model is untouched; each recipe trained its own copy
    assert all(torch.equal(p, start[n]) for n, p in tiny_model.named_parameters())
    r1, dr = result.runs
    assert [len(r1.rows), len(dr.rows)] == [2, 2]
    # same seed, same starting weights: the first rollouts are identical across recipes
    for key in ("reward", "response_len_mean", "truncation_rate"):
        assert r1.rows[0][key] == dr.rows[0][key], key
    assert "adv_estimator: dr_grpo" in (dr.run_dir / "config.yaml").read_text()
    assert "adv_estimator: grpo" in (r1.run_dir / "config.yaml").read_text()
    for run in result.runs:  # table values are the runs' own held-out evaluations
        again = load_result(run.run_dir / "eval_final.jsonl", k=2)
        assert again.metrics["pass@1"] == run.final["pass@1"]
        assert run.base == r1.base
    md = result.table.read_text()
    for run in result.runs:
        row = next(ln for ln in md.splitlines() if ln.startswith(f"| {run.name} |"))
        assert f"{run.base['pass@1']:.3f} -> {run.final['pass@1']:.3f}" in row
        assert f"| {compare.tail_mean(run.rows, 'reward'):.3f} |" in row
    assert "seed 0, steps 2, prompts_per_step 2, group_size 4" in md
    png = result.plot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    data = json.loads((tmp_path / "compare.json").read_text())
    assert [r["recipe"] for r in data["runs"]] == ["r1_zero_tiny", "dr_grpo_tiny"]


def test_tail_mean_and_heldout_points():
    rows = [{"step": i, "reward": float(i)} for i in range(20)]
    assert compare.tail_mean(rows, "reward") == 18.5  # last 2 of 20
    assert compare.tail_mean(rows[:3], "reward") == 2.0  # at least one row
    assert compare.tail_mean(rows, "missing") != compare.tail_mean(rows, "missing")  # NaN
    run = compare.RecipeRun("x", None, rows, {"pass@1": 0.1}, {"pass@1": 0.4}, 12.5)
    assert compare.heldout_points(run) == [
        {"step": 0, "elapsed": 0.0, "heldout_pass@1": 0.1},
        {"step": 20, "elapsed": 12.5, "heldout_pass@1": 0.4},
    ]
    rows[9] |= {"heldout_pass@1": 0.25, "elapsed": 6.0}  # eval.every=10: after step 10
    rows[19] |= {"heldout_pass@1": 0.4, "elapsed": 12.0}  # the last step: the final evaluation
    assert compare.heldout_points(run) == [
        {"step": 0, "elapsed": 0.0, "heldout_pass@1": 0.1},
        {"step": 10, "elapsed": 6.0, "heldout_pass@1": 0.25},
        {"step": 20, "elapsed": 12.5, "heldout_pass@1": 0.4},
    ]


def test_recipes_must_share_seed_and_budget(tmp_path):
    bigger = tmp_path / "big_groups.yaml"
    bigger.write_text("base: r1_zero_tiny\ngrpo:\n  group_size: 16\n")
    with pytest.raises(ConfigError, match=r"differ in grpo.group_size \(8 vs 16\)"):
        compare.resolve(["r1_zero_tiny", str(bigger)])
    same = compare.resolve(["r1_zero_tiny", str(bigger)], ["grpo.group_size=4"], steps=3)
    assert [(n, c.grpo.group_size, c.grpo.steps) for n, c in same] == [
        ("r1_zero_tiny", 4, 3),
        ("big_groups", 4, 3),
    ]
    with pytest.raises(ConfigError, match="listed twice"):
        compare.resolve(["r1_zero_tiny", "r1_zero_tiny"])
    with pytest.raises(ConfigError, match="no recipe 'nope'"):
        compare.resolve(["nope"])


def test_cli_compare_runs_recipes_from_a_model_directory(
    tmp_path, tiny_model, tiny_tokenizer, capsys
):
    model_dir = tmp_path / "start"
    tiny_model.save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)
    out = tmp_path / "cmp"
    argv = ["compare", "r1_zero_tiny", "gspo_tiny", "--steps", "1", "--out", str(out),
            f"model.path={model_dir}", *TINY]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| gspo_tiny | 1 |" in printed and f"plot:  {out / 'compare.png'}" in printed
    assert (out / "compare.png").exists() and (out / "r1_zero_tiny" / "metrics.jsonl").exists()


def test_cli_compare_needs_a_recipe(capsys):
    assert cli.main(["compare", "grpo.steps=2"]) == 2
    assert "needs at least one recipe" in capsys.readouterr().err
    assert cli.main(["compare", "r1_zero_tiny", "--steps", "0"]) == 2
    assert "--steps must be >= 1" in capsys.readouterr().err


def test_cli_options_may_sit_between_recipes_and_overrides():
    from r1lab.commands.compare import parse_items

    parser = cli.build_parser()
    args = parser.parse_args(["compare", "a", "b", "--steps", "5", "x.y=1", "--out", "o"])
    assert parse_items(args) == (["a", "b"], ["x.y=1"], 5, Path("o"))
    args = parser.parse_args(["compare", "--no-progress", "--steps", "3", "a", "x.y=1"])
    assert parse_items(args) == (["a"], ["x.y=1", "progress=false"], 3, None)


def test_a_recipe_stopped_by_the_doctor_is_reported_and_still_evaluated(
    tmp_path, tiny_model, tiny_tokenizer
):
    # needs the run doctor wired into grpo.run (RLConfig.doctor); accuracy + format are always 0
    # for a random model, so every group is a zero-variance group
    result = compare.run(
        ["r1_zero_tiny"], overrides=[*TINY, "doctor.zero_variance_patience=2"], steps=4,
        out_dir=tmp_path, model=tiny_model, tokenizer=tiny_tokenizer, log=lambda _: None,
    )  # fmt: skip
    (run,) = result.runs
    assert len(run.rows) == 2 and run.stopped_check == "zero_variance"
    assert "zero-variance group" in run.stopped
    assert (run.run_dir / "eval_final.jsonl").exists()
    md = result.table.read_text()
    assert "| r1_zero_tiny | 2 |" in md and "STOPPED (zero_variance)" in md
    assert "- **r1_zero_tiny** stopped: training stopped by the run doctor" in md


def test_a_recipe_whose_dynamic_sampling_runs_dry_is_reported_and_the_others_still_run(
    tmp_path, tiny_model, tiny_tokenizer
):
    # a random model scores 0 everywhere: dynamic sampling finds no group with differing rewards
    result = compare.run(
        ["dapo_tiny", "r1_zero_tiny"],
        overrides=[*TINY, "grpo.max_gen_rounds=2", "doctor.zero_variance_patience=100",
                   "grpo.beta=0.0", "rewards=[{name: accuracy}, {name: format, weight: 0.5}]"],
        steps=2, out_dir=tmp_path, model=tiny_model, tokenizer=tiny_tokenizer,
        log=lambda _: None,
    )  # fmt: skip
    dapo, zero = result.runs
    assert dapo.stopped_check == "dynamic_sampling" and "2 rounds" in dapo.stopped
    assert (dapo.run_dir / "eval_final.jsonl").exists()
    assert zero.stopped is None and len(zero.rows) == 2
    assert "STOPPED (dynamic_sampling)" in result.table.read_text()
