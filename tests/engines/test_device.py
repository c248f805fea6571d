"""Device placement: `model.device` resolution and rollout batches moved to the model's device.

No GPU here: these check the CPU side of the contract (auto -> cpu without CUDA, explicit strings
pass through, every tensor field survives a move); the GPU path itself is not exercised.
"""

from __future__ import annotations

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
