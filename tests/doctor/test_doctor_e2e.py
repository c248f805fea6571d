"""The run doctor inside the real GRPO loop, on a random "test"-size model (seconds per run).

Integration assumed (pipelines/grpo.py + rl_config.py): ``RLConfig.doctor: DoctorConfig``; each
step row carries ``zero_variance_frac``, ``empty_response_frac`` and ``reward_error_rate``; the
loop calls ``doctor.observe(row)`` right after writing the row to metrics.jsonl, the doctor logs
through the ``log`` passed to ``grpo.run``, and ``doctor.report().save(run_dir)`` runs in a
``finally`` (so doctor.json exists after a stop too).
"""

from __future__ import annotations

import math

import pytest
import torch

from r1lab.config import load_config
from r1lab.doctor import DoctorReport, TrainingStopped
from r1lab.pipelines import grpo
from r1lab.pipelines.rl_config import RLConfig
from r1lab.utils.jsonl import read_jsonl

# accuracy is ~always 0 for a random model; the cosine length reward over characters gives the
# completions of a group different scores, so there is a learning signal (and parameters move)
VARIED_REWARD = (
    "rewards=[{name: accuracy, weight: 1.0}, "
    "{name: cosine, weight: 1.0, params: {unit: chars, max_len: 100, r_exceed: null}}]"
)


def tiny_cfg(*overrides: str) -> RLConfig:
    base = [
        "threads=1",
        "progress=false",
        "data.n_train=16",
        "data.n_test=4",
        "grpo.prompts_per_step=2",
        "grpo.mini_batches=1",  # one optimizer step (one backward) per step
        "grpo.group_size=4",
        "grpo.micro_batch_size=64",
        "grpo.beta=0.0",
        "sampling.max_new_tokens=12",
    ]
    return load_config(RLConfig, "r1_zero_tiny", [*base, *overrides])


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_reward_always_zero_stops_early_naming_zero_variance_groups(
    tmp_path, tiny_model, tiny_tokenizer
):
    cfg = tiny_cfg("grpo.steps=8", "doctor.zero_variance_patience=3")
    lines: list[str] = []
    with pytest.raises(TrainingStopped, match="zero-variance group") as info:
        grpo.run(
            cfg, run_dir=tmp_path, model=tiny_model, tokenizer=tiny_tokenizer, log=lines.append
        )
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert len(rows) == 3  # stopped at the patience, not after all 8 steps
    assert all(r["reward"] == 0.0 and r["zero_variance_frac"] == 1.0 for r in rows)
    assert info.value.finding.step == 2
    report = DoctorReport.load(tmp_path)
    assert report.stopped is not None and "zero-variance group" in report.stopped
    assert report.count("zero_variance", "fatal") == 1


class NaNGradAt:
    """A tensor hook that replaces one parameter's gradient with NaN at the n-th backward."""

    def __init__(self, model: torch.nn.Module, at_call: int) -> None:
        name, self.param = next(
            (n, p) for n, p in model.named_parameters() if n.endswith("down_proj.weight")
        )
        self.at_call, self.calls = at_call, 0
        self.model = model
        self.before_skip: dict[str, torch.Tensor] | None = None
        self.after_skip: dict[str, torch.Tensor] | None = None
        self.param.register_hook(self)

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.model.named_parameters()}

    def __call__(self, grad: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.at_call:
            self.before_skip = self.snapshot()
            return torch.full_like(grad, math.nan)
        if self.calls == self.at_call + 1:
            self.after_skip = self.snapshot()
        return grad


def test_injected_nan_gradient_is_skipped_counted_and_training_continues(
    tmp_path, tiny_model, tiny_tokenizer
):
    steps, nan_step = 5, 2
    hook = NaNGradAt(tiny_model, at_call=nan_step + 1)  # one backward per step (mu 1, 1 micro)
    cfg = tiny_cfg(f"grpo.steps={steps}", VARIED_REWARD)
    result = grpo.run(
        cfg, run_dir=tmp_path, model=tiny_model, tokenizer=tiny_tokenizer, log=lambda _: None
    )
    assert hook.calls == steps  # premise: exactly one backward per step
    rows = result.metrics
    assert len(rows) == steps
    assert [r["skipped_nonfinite"] for r in rows] == [float(s == nan_step) for s in range(steps)]
    assert math.isnan(rows[nan_step]["grad_norm"])
    assert all(
        math.isfinite(r["grad_norm"]) and r["grad_norm"] > 0
        for i, r in enumerate(rows)
        if i != nan_step
    )
    # the skipped step changed nothing; the steps after it did
    for name, p in hook.before_skip.items():
        assert torch.equal(p, hook.after_skip[name]), name
    final = dict(tiny_model.named_parameters())
    assert all(torch.isfinite(p).all() for p in final.values())
    assert any(not torch.equal(p, final[n].detach()) for n, p in hook.before_skip.items())
    report = DoctorReport.load(tmp_path)
    entry = report.entry("nonfinite", "warning")
    assert (entry.count, entry.first_step, entry.last_step) == (1, nan_step, nan_step)
    assert report.stopped is None and report.steps == steps


def test_too_small_max_new_tokens_warns_about_truncation(tmp_path, tiny_model, tiny_tokenizer):
    cfg = tiny_cfg("grpo.steps=2", "sampling.max_new_tokens=2", VARIED_REWARD)
    lines: list[str] = []
    result = grpo.run(
        cfg, run_dir=tmp_path, model=tiny_model, tokenizer=tiny_tokenizer, log=lines.append
    )
    assert all(r["truncation_rate"] >= 0.75 for r in result.metrics)
    report = DoctorReport.load(tmp_path)
    entry = report.entry("truncation", "warning")
    assert entry is not None and entry.count == 2
    assert "max_new_tokens too small?" in entry.first_message
    assert any("[truncation]" in ln and "max_new_tokens" in ln for ln in lines)
    assert report.stopped is None


@pytest.mark.parametrize("mode", ["sampler", "trainer"])
def test_sampler_old_logprobs_under_top_k_warn_once_at_step_0(
    tmp_path, tiny_model, tiny_tokenizer, mode
):
    """top-k 3 on a near-uniform random model: the sampler's log-probs are those of 3 tokens, the
    trainer's of the whole vocabulary. Edit caught: `score_batch` ignoring old_logprobs."""
    cfg = tiny_cfg("grpo.steps=2", "sampling.top_k=3", f"grpo.old_logprobs={mode}", VARIED_REWARD)
    lines: list[str] = []
    result = grpo.run(
        cfg, run_dir=tmp_path, model=tiny_model, tokenizer=tiny_tokenizer, log=lines.append
    )
    entry = DoctorReport.load(tmp_path).entry("onpolicy_ratio", "warning")
    if mode == "trainer":
        assert entry is None
        assert result.metrics[0]["ratio_mean/first"] == pytest.approx(1.0, abs=1e-4)
        return
    first = result.metrics[0]["ratio_mean/first"]
    assert first < 0.5  # pi_trainer / pi_sampler of the sampled tokens
    assert entry.count == 1 and entry.first_step == 0
    assert f"{first:.3f}" in entry.first_message
    assert sum("[onpolicy_ratio]" in ln for ln in lines) == 1
