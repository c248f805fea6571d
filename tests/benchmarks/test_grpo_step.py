"""The GRPO CPU benchmark (benchmarks/grpo_step.py): the workload definition, r1lab's driver, and
(slow, when TRL's environment exists) the whole alternating comparison in its quick form."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import grpo_workload as wl  # noqa: E402


def workload_args(*argv: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    wl.add_workload_args(ap)
    return wl.resolve(ap.parse_args(list(argv)))


def test_tokenizer_prompts_and_rewards_follow_the_doc():
    tok = wl.build_tokenizer()
    assert len(tok) == 98
    assert tok("12+34=", add_special_tokens=False)["input_ids"] == [20, 21, 14, 22, 23, 32]
    assert tok.decode([0, 20, 1, 2, 21], skip_special_tokens=True) == "12"
    assert [wl.prompt(i)[0] for i in range(4)] == ["10+21=", "47+74=", "84+37=", "31+90="]
    assert wl.prompt(0)[1] == "31"
    assert all(len(wl.prompt(i)[0]) == wl.PROMPT_LEN for i in range(200))
    assert wl.total_reward("31 and more", "31") == 2.0
    assert wl.total_reward("3", "31") == 1.0
    assert wl.total_reward("", "31") == 0.0 and wl.total_reward(" 31", "31") == 0.0


@pytest.mark.parametrize("config,params", [("small", 1_063_808), ("large", 6_324_480)])
def test_model_parameter_counts(config, params):
    model = wl.build_model(workload_args("--config", config))
    assert sum(p.numel() for p in model.parameters()) == params
    assert model.config.tie_word_embeddings
    assert float(model.model.embed_tokens.weight[0].detach().abs().sum()) == 0.0  # <pad>
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_r1lab_driver_reports_the_figures(tmp_path):
    import r1lab_grpo_cpu

    args = workload_args(
        "--hidden-size", "32", "--num-layers", "1", "--max-completion-length", "4",
        "--prompts-per-step", "2", "--num-generations", "4", "--steps", "2",
        "--warmup-steps", "1", "--threads", "1",
    )  # fmt: skip
    out = r1lab_grpo_cpu.run(args, tmp_path)
    assert len(out["step_s_all"]) == 3 and out["step_s_median"] > 0
    assert out["gen_tokens_per_s"] == pytest.approx(2 * 8 * 4 / sum(out["step_s_all"][1:]))
    assert (tmp_path / "init_model" / "tokenizer.json").exists()
    assert out["generate_s_median"] <= out["rollout_s_median"] <= out["step_s_median"]


@pytest.mark.slow
def test_quick_benchmark_against_trl():
    if not (BENCH / ".venv-trl" / ".trl-1.16.0-torch-2.13.0").exists():
        pytest.skip("TRL's environment is not set up: run bash benchmarks/setup_trl.sh")
    proc = subprocess.run(
        [sys.executable, str(BENCH / "grpo_step.py"), "--quick", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    small = result["configs"]["small"]
    assert small["speedup"] > 0 and 0 < small["r1lab"]["roofline_fraction"] < 1.5
    for side in ("r1lab", "trl"):
        assert small[side]["gen_tokens_per_s"] > 0 and small[side]["peak_rss_mib"] > 100
