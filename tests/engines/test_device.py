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


def test_sft_and_rejection_sampling_load_the_model_on_model_device(monkeypatch, tmp_path):
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
