"""Experiments over several seeds (`seeds=[...]`) on a random "test"-size model: each seed a full
run with its own seed, complete seeds reused, half-finished ones rerun, the same seed twice gives
identical metrics and two seeds different samples; the report's numbers are the seeds' own."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from r1lab.errors import ConfigError
from r1lab.eval.seeds_stats import over_seeds, paired_difference
from r1lab.pipelines import seeds as S
from r1lab.pipelines.compare_seeds import run_seeds_compare
from r1lab.utils.jsonl import read_jsonl

TINY = ["threads=1", "progress=false", "grpo.prompts_per_step=2", "grpo.mini_batches=2",
        "grpo.group_size=4",
        "data.n_train=16", "data.n_test=3", "sampling.max_new_tokens=8", "eval.k=2",
        "eval.max_new_tokens=8"]  # fmt: skip
TIMINGS = ("rl_seconds", "elapsed")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_take_seeds_from_overrides():
    assert S.take_seeds(["a.b=1", "seeds=[0, 1,2]", "x=y"]) == ((0, 1, 2), ["a.b=1", "x=y"])
    assert S.take_seeds(["a.b=1"]) == (None, ["a.b=1"])
    assert S.take_seeds(["seeds=[7]"]) == ((7,), [])
    for bad in ("seeds=3", "seeds=[]", "seeds=[0,-1]", "seeds=[a]", "seeds=[true]"):
        with pytest.raises(ConfigError, match="list of integers"):
            S.take_seeds([bad])
    with pytest.raises(ConfigError, match="each seed once"):
        S.take_seeds(["seeds=[1,1]"])
    with pytest.raises(ConfigError, match="not both"):
        S.take_seeds(["seed=3", "seeds=[0,1]"])


def _compare(tmp, model, tok, seeds, recipes=("r1_zero_tiny", "dr_grpo_tiny"), steps=2, log=None):
    return run_seeds_compare(list(recipes), seeds, overrides=TINY, steps=steps, out_dir=tmp,
                             model=model, tokenizer=tok, log=log or (lambda *_: None))  # fmt: skip


def test_compare_over_seeds_reports_each_seeds_own_numbers_and_reuses_complete_seeds(
    tmp_path, tiny_model, tiny_tokenizer
):
    res = _compare(tmp_path, tiny_model, tiny_tokenizer, [0, 1])
    names = ["r1_zero_tiny", "dr_grpo_tiny"]
    own = {}  # each seed's own compare.json
    for seed in (0, 1):
        sdir = tmp_path / f"seed{seed}"
        assert (sdir / S.DONE).exists() and (sdir / "compare.md").exists()
        for name in names:
            assert yaml.safe_load((sdir / name / "config.yaml").read_text())["seed"] == seed
        own[seed] = {
            r["recipe"]: r for r in json.loads((sdir / "compare.json").read_text())["runs"]
        }
    report = json.loads((tmp_path / "compare.json").read_text())
    assert report["seeds"] == [0, 1]
    for name in names:
        for metric in ("heldout_pass@1", "response_len", "train_reward"):
            m = report["metrics"][name][metric]
            per_seed = [own[s][name][metric] for s in (0, 1)]
            assert m["per_seed"] == per_seed
            st = over_seeds(per_seed)
            assert m["mean"] == pytest.approx(st.mean) and m["ci95"] == [st.lo, st.hi]
    # the seeds really differ (the response length of seed 0 and 1 are not the same)
    lens = report["metrics"]["r1_zero_tiny"]["response_len"]["per_seed"]
    assert lens[0] != lens[1]
    diff = report["differences"][-1]  # dr_grpo - r1_zero, paired by seed
    assert (diff["a"], diff["b"]) == ("r1_zero_tiny", "dr_grpo_tiny")
    d = paired_difference(*[[own[s][n]["heldout_pass@1"] for s in (0, 1)] for n in names])
    assert diff["per_seed"] == list(d.values) and diff["finding"] is False
    md = res.table.read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| response_len | r1_zero_tiny |"))
    assert f"{lens[0]:.3f} / {lens[1]:.3f}" in row
    assert "95% t-interval over seeds" in md and "called a finding only when" in md
    assert "not a finding" in md
    assert res.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    logs: list[str] = []  # a rerun reuses both complete seeds: no training at all
    again = _compare(tmp_path, tiny_model, tiny_tokenizer, [0, 1], log=logs.append)
    assert sum("already complete" in ln for ln in logs) == 2
    assert not any(ln.startswith("[compare]") for ln in logs)
    assert [r.summary for r in again.seeds] == [r.summary for r in res.seeds]

    (tmp_path / "seed1" / S.DONE).unlink()  # a half-finished seed is run again, never reused
    logs.clear()
    _compare(tmp_path, tiny_model, tiny_tokenizer, [0, 1], log=logs.append)
    assert sum("already complete" in ln for ln in logs) == 1
    assert any("seed 1 did not finish earlier" in ln for ln in logs)
    assert (tmp_path / "seed1" / S.DONE).exists()

    with pytest.raises(ConfigError, match="different config"):  # another budget, same directory
        _compare(tmp_path, tiny_model, tiny_tokenizer, [0, 1], steps=1)


def _no_timings(value):
    if isinstance(value, dict):
        return {k: _no_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_no_timings(v) for v in value]
    return value


def test_the_same_seed_twice_is_identical_and_two_seeds_sample_differently(
    tmp_path, tiny_model, tiny_tokenizer
):
    one = _compare(tmp_path / "a", tiny_model, tiny_tokenizer, [0], recipes=["r1_zero_tiny"])
    two = _compare(tmp_path / "b", tiny_model, tiny_tokenizer, [0, 1], recipes=["r1_zero_tiny"])
    first, again, other = one.seeds[0], two.seeds[0], two.seeds[1]
    assert not again.reused
    assert _no_timings(first.summary) == _no_timings(again.summary)

    def texts(run, name):
        return [r["completion"] for r in read_jsonl(run.run_dir / "r1_zero_tiny" / name)]

    for name in ("samples.jsonl", "eval_final.jsonl"):
        assert texts(first, name) == texts(again, name), name
        assert texts(first, name) != texts(other, name), name
    # one seed: the mean is reported, no interval over seeds and nothing called a finding
    pass1 = one.summary.stat("r1_zero_tiny", "heldout_pass@1")
    assert pass1.n == 1 and math.isnan(pass1.lo)
    assert "no interval over seeds, no finding" in one.table.read_text()


def test_cli_compare_with_seeds(tmp_path, tiny_model, tiny_tokenizer, capsys):
    from r1lab import cli

    model_dir = tmp_path / "start"
    tiny_model.save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)
    out = tmp_path / "cmp"
    argv = ["compare", "r1_zero_tiny", "gspo_tiny", "seeds=[0,2]", "--steps", "1", "--out",
            str(out), f"model.path={model_dir}", *TINY]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "over 2 seeds" in printed and "| heldout_pass@1 | gspo_tiny |" in printed
    assert (out / "seed0" / S.DONE).exists() and (out / "seed2" / S.DONE).exists()
    assert not (out / "seed1").exists()
    assert json.loads((out / "compare.json").read_text())["seeds"] == [0, 2]
    assert cli.main(["compare", "r1_zero_tiny", "seeds=[0,0]"]) == 2
    assert "each seed once" in capsys.readouterr().err
    assert cli.main(["rl", "r1_zero_tiny", "seeds=[0,1]"]) == 2  # only where it is supported
    assert "seeds" in capsys.readouterr().err
