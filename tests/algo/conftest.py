"""The worked example of algorithms.md section 3.1 as padded (B, T) tensors, float64.

G = 4 responses of lengths 2, 3, 1, 2, padded to T = 4. Padding positions hold junk values so a
test fails if any function lets padding leak into a result.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

JUNK = 7.5  # default padding junk; the log-prob tensors each get a different one

LP_OLD = [[-1.0, -0.5], [-2.0, -1.0, -0.3], [-0.7], [-0.2, -1.5]]
LP_NEW = [[-0.8, -0.5], [-2.2, -0.7, -0.3], [-1.0], [-0.1, -1.2]]
LP_REF = [[-1.1, -0.4], [-1.9, -1.0, -0.5], [-0.7], [-0.3, -1.5]]
REWARDS = [1.0, 0.0, 0.0, 1.0]


def pad(rows: list[list[float]], T: int = 4, fill: float = JUNK) -> torch.Tensor:
    out = torch.full((len(rows), T), fill, dtype=torch.float64)
    for b, r in enumerate(rows):
        out[b, : len(r)] = torch.tensor(r, dtype=torch.float64)
    return out


@dataclass
class Worked:
    old: torch.Tensor
    new: torch.Tensor
    ref: torch.Tensor
    mask: torch.Tensor
    scores: torch.Tensor

    def logp(self) -> torch.Tensor:
        """A fresh leaf copy of the new log-probs that records gradients."""
        return self.new.clone().requires_grad_(True)

    def per_row(self, t_BT: torch.Tensor) -> list[list[float]]:
        lengths = self.mask.sum(-1).long().tolist()
        return [t_BT[b, :n].tolist() for b, n in enumerate(lengths)]


@pytest.fixture()
def w() -> Worked:
    mask = pad([[1.0] * len(r) for r in LP_OLD], fill=0.0)
    return Worked(
        old=pad(LP_OLD, fill=-9.0),
        new=pad(LP_NEW, fill=3.0),
        ref=pad(LP_REF, fill=40.0),
        mask=mask,
        scores=torch.tensor(REWARDS, dtype=torch.float64),
    )
