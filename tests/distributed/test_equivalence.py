"""2 processes (gloo, CPU) give the same loss, gradient norm and gradients as 1 process on the same
global batch: DDP and FSDP2. The gradient is read as the parameter change of one SGD(lr=1) step
without clipping, so `params_after = params_before - grad` is compared tensor by tensor."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))
import dist_workers as W  # noqa: E402


@pytest.fixture(scope="module")
def reference():
    return W.single_process_reference()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> dict:
    """One spawn of 2 gloo ranks runs every case (process start-up dominates the time)."""
    tmp = tmp_path_factory.mktemp("equivalence")
    out = tmp / "rank0.pt"
    mp.spawn(W.equivalence_worker, args=(2, str(tmp / "store"), str(out)), nprocs=2, join=True)
    return torch.load(out, weights_only=False)


def check_equal(reference, got) -> None:
    before = W.tiny_qwen2().state_dict()
    for agg in W.AGGS:
        ref_metrics, ref_params = reference[agg]
        metrics, params, rollout = got[agg]
        assert metrics["loss"] == pytest.approx(ref_metrics["loss"], abs=1e-6), agg
        assert metrics["grad_norm"] == pytest.approx(ref_metrics["grad_norm"], rel=1e-5), agg
        assert metrics["kl"] == pytest.approx(ref_metrics["kl"], abs=1e-6), agg
        moved = 0
        for k, want in ref_params.items():
            torch.testing.assert_close(params[k], want, atol=1e-5, rtol=0, msg=f"{agg} {k}")
            moved += int(not torch.equal(want, before[k]))
            # the rollout model (what the generator samples from) holds the trained weights
            torch.testing.assert_close(rollout[k], want, atol=1e-5, rtol=0)
        assert moved == len(ref_params), "every parameter gets a gradient"


def test_ddp_two_processes_equal_one_process(two_ranks, reference):
    check_equal(reference, two_ranks["ddp"])


def test_fsdp2_two_processes_equal_one_process(two_ranks, reference):
    check_equal(reference, two_ranks["fsdp2"])


def test_one_process_reference_is_not_a_half_batch(reference):
    """The oracle would not catch rank-local normalizers if half a batch gave the same loss."""
    torch.set_num_threads(1)
    model = W.tiny_qwen2()
    half = W.plain_learner(model).update(
        W.global_batch().rows(0, W.B // 2), W.loss_fn_for(W.AGGS[0])
    )
    assert abs(half["loss"] - reference[W.AGGS[0]][0]["loss"]) > 1e-3
