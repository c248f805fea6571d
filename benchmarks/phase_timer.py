"""Where a GRPO step's time goes, measured the same way on both sides (``--phases``).

Hooks, nothing inside either library is edited:

* ``ref_forward`` / ``policy_forward``: wall time inside the reference's and the policy's
  decoder module (``model.model``), the latter only with grad enabled (so generation's
  no-grad forwards do not count); the LM head and log-prob math are not in these.
* ``backward``: inside ``torch.Tensor.backward`` (TRL's ``accelerator.backward`` calls it).
* ``clip``: inside ``torch.nn.utils.clip_grad_norm_``; ``optimizer``: inside ``Optimizer.step``
  (global step hooks).
* ``generate``: the generation call (each script measures it already).

Per step, ``other`` = step time - the phases above: tokenization, decoding, rewards,
advantages, the LM head and loss math, the trainer's bookkeeping.
"""

from __future__ import annotations

import functools
import statistics
import time

import torch
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

PHASES = ("ref_forward", "policy_forward", "backward", "clip", "optimizer")


class PhaseTimer:
    def __init__(self) -> None:
        self.acc = dict.fromkeys(PHASES, 0.0)
        self.per_step: list[dict[str, float]] = []
        self._t0: dict[str, float] = {}

    def _start(self, name: str) -> None:
        self._t0[name] = time.perf_counter()

    def _stop(self, name: str) -> None:
        self.acc[name] += time.perf_counter() - self._t0.pop(name)

    def install(self, policy_decoder: torch.nn.Module, ref_decoder: torch.nn.Module | None):
        def pre(name, grad_only):
            def hook(*_):
                if not grad_only or torch.is_grad_enabled():
                    self._start(name)

            return hook

        def post(name):
            def hook(*_):
                if name in self._t0:
                    self._stop(name)

            return hook

        policy_decoder.register_forward_pre_hook(pre("policy_forward", True))
        policy_decoder.register_forward_hook(post("policy_forward"))
        if ref_decoder is not None:
            ref_decoder.register_forward_pre_hook(pre("ref_forward", False))
            ref_decoder.register_forward_hook(post("ref_forward"))
        register_optimizer_step_pre_hook(lambda *_: self._start("optimizer"))
        register_optimizer_step_post_hook(lambda *_: self._stop("optimizer"))
        torch.Tensor.backward = self._timed("backward", torch.Tensor.backward)
        torch.nn.utils.clip_grad_norm_ = self._timed("clip", torch.nn.utils.clip_grad_norm_)

    def _timed(self, name, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            self._start(name)
            try:
                return fn(*a, **k)
            finally:
                self._stop(name)

        return wrapper

    def step_end(self) -> None:
        self.per_step.append(dict(self.acc))
        self.acc = dict.fromkeys(PHASES, 0.0)

    def medians(self, step_s: list[float], generate_s: list[float], warmup: int) -> dict:
        rows = []
        for s, g, ph in list(zip(step_s, generate_s, self.per_step))[warmup:]:
            row = {"generate": g, **ph}
            row["other"] = s - sum(row.values())
            rows.append(row)
        return {f"phase_{k}_s": statistics.median(r[k] for r in rows) for k in rows[0]}
