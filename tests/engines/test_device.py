"""Device placement: `model.device` resolution and rollout batches moved to the model's device.

No GPU here: these check the CPU side of the contract (auto -> cpu without CUDA, explicit strings
pass through, every tensor field survives a move); the GPU path itself is not exercised.
"""

from __future__ import annotations

import pytest
import torch

from r1lab.engines.device import resolve_device
from r1lab.engines.hf_learner import TrainBatch


def test_auto_is_the_cpu_without_a_gpu_and_explicit_devices_pass_through(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda:3") == "cuda:3"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("auto") == "cuda:1"  # under torchrun: this rank's GPU


def test_a_moved_batch_keeps_every_field():
    B, T = 3, 4
    batch = TrainBatch(
        prompt_ids=[[1], [2], [3]],
        completion_ids=[[4, 5], [6], [7, 8, 9, 1]],
        mask_BT=torch.ones(B, T),
        old_logp_BT=torch.randn(B, T),
        adv_BT=torch.randn(B, T),
        ref_logp_BT=None,
        is_weight_BT=torch.rand(B, T),
    )
    moved = batch.to(torch.device("meta"))
    assert moved.prompt_ids == batch.prompt_ids and moved.completion_ids == batch.completion_ids
    assert moved.ref_logp_BT is None
    for name in ("mask_BT", "old_logp_BT", "adv_BT", "is_weight_BT"):
        t = getattr(moved, name)
        assert t.device.type == "meta" and t.shape == (B, T), name


class _Loaded(Exception):
    pass


@pytest.fixture
def any_device_exists(monkeypatch):
    """`model.device=cuda:N` passes the load-time device check here (the loaders are faked)."""
    import r1lab.engines.device as device

    monkeypatch.setattr(device, "device_problem", lambda spec: None)


def test_sft_and_rejection_sampling_load_the_model_on_model_device(
    monkeypatch, tmp_path, any_device_exists
):
    """`model.device` reaches the loader in SFT and rejection sampling too (not only RL)."""
    import r1lab.pipelines.common as common
    from r1lab.config import load_config
    from r1lab.pipelines import rejection_sampling, sft
    from r1lab.pipelines.rs_config import RSConfig
    from r1lab.pipelines.sft_config import SFTConfig

    seen = []

    def fake_load_model(path, **kwargs):
        seen.append(kwargs.get("device"))
        raise _Loaded

    monkeypatch.setattr(common, "load_model", fake_load_model)
    monkeypatch.setattr(sft, "load_model", fake_load_model)
    sft_cfg = load_config(
        SFTConfig, None, [f"output_dir={tmp_path}", "model.device=cuda:1", "progress=false"]
    )
    with pytest.raises(_Loaded):
        sft.run(sft_cfg, log=lambda *_: None)
    rs_cfg = load_config(RSConfig, None, ["model.path=some/dir", "model.device=cuda:2"])
    with pytest.raises(_Loaded):
        rejection_sampling.make_generator(rs_cfg, log=lambda *_: None)
    assert seen == ["cuda:1", "cuda:2"]


def test_r1_stages_and_stage_evaluations_keep_model_device_and_dtype(
    monkeypatch, tmp_path, any_device_exists
):
    """R1's sub-runs (cold-start sampling and SFT, reasoning RL, rejection sampling + SFT) and
    its per-stage evaluations load on `model.device` in `model.dtype`; distillation's
    evaluations on the student's."""
    import r1lab.models.hf_load as hf_load
    from r1lab.config import load_config
    from r1lab.pipelines import grpo, r1, rejection_sampling, sft
    from r1lab.pipelines.r1_config import R1Config

    seen = []

    def capture(cfg, **_):
        seen.append((cfg.model.path, cfg.model.device, cfg.model.dtype))
        raise _Loaded

    for module in (sft, grpo, rejection_sampling):
        monkeypatch.setattr(module, "run", capture)
    cfg = load_config(
        R1Config,
        "r1_tiny",
        [f"output_dir={tmp_path}", "model.device=cuda:1", "model.dtype=bfloat16"],
    )
    (tmp_path / "rl").mkdir()
    calls = [
        lambda: r1.cold_start(cfg, "base/dir", tmp_path, log=lambda *_: None),
        lambda: r1._sft(cfg, "m", tmp_path / "d.jsonl", cfg.cold_start.sft, tmp_path / "s", None),
        lambda: r1._rl(cfg, "reasoning_rl", "stage1/dir", tmp_path / "rl", log=lambda *_: None),
        lambda: r1.rejection_sft(cfg, "base/dir", "stage2/dir", tmp_path, log=lambda *_: None),
    ]
    for call in calls:
        with pytest.raises(_Loaded):
            call()
    assert [s[1:] for s in seen] == [("cuda:1", "bfloat16")] * 4
    assert [s[0] for s in seen] == ["base/dir", "m", "stage1/dir", "stage2/dir"]

    loaded = []

    def fake_load(path, **kwargs):
        loaded.append((path, kwargs))
        raise _Loaded

    monkeypatch.setattr(hf_load, "load_causal_lm", fake_load)
    with pytest.raises(_Loaded):
        r1.evaluate_stage(cfg, "stage3/dir", tmp_path, test=[], general=[])
    # distillation evaluates its student base first, on the student's device
    from r1lab.pipelines import distill
    from r1lab.pipelines.distill_config import DistillConfig

    dcfg = load_config(
        DistillConfig,
        None,
        [
            f"output_dir={tmp_path}",
            f"teacher.path={tmp_path}",
            "student.path=student/dir",
            "student.device=cuda:2",
        ],
    )
    with pytest.raises(_Loaded):
        distill.run(dcfg, log=lambda *_: None)
    assert loaded == [
        ("stage3/dir", {"dtype": "bfloat16", "device": "cuda:1"}),
        ("student/dir", {"dtype": "float32", "device": "cuda:2"}),
    ]
