"""Supervised losses: the token-mean NLL of SFT and pretraining, the Bradley-Terry loss of the
reward model. Each returns ``(loss, metrics)`` like the policy losses, so `Learner.update` runs
them the same way (``num_tokens`` / ``num_seqs``: the global normalizers of the whole batch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from r1lab.algo._checks import check_shape
from r1lab.algo.aggregate import token_mean


def nll_token_mean(
    logp_BT: torch.Tensor, mask_BT: torch.Tensor, *, num_tokens: float | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``sum(-logp * mask) / num_tokens``: every target token weighs the same (``num_tokens``
    defaults to this batch's mask sum; pass the global count under gradient accumulation).

    Shapes: logp_BT (B, T) log-prob of each target; mask_BT (B, T) 0/1; returns a scalar ()
    """
    check_shape("mask_BT", mask_BT, tuple(logp_BT.shape))
    return token_mean(-logp_BT, mask_BT, num_tokens=num_tokens), {}


def bradley_terry(
    margin_P: torch.Tensor, *, num_pairs: float | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``-sum(log sigmoid(r_chosen - r_rejected)) / num_pairs`` and the share of pairs ordered
    right (``pair_acc``).

    Shapes: margin_P (P,) = r_chosen - r_rejected; returns a scalar ()
    """
    check_shape("margin_P", margin_P, (None,))
    n = float(margin_P.numel()) if num_pairs is None else num_pairs
    loss = -F.logsigmoid(margin_P).sum() / n
    return loss, {"pair_acc": (margin_P.detach() > 0).float().mean()}
