"""DAPO sample filters (algorithms.md section 5): dynamic sampling and overlong filtering.

* `informative_groups`: a group whose rewards are all equal has zero advantage under every
  group-baseline estimator and adds no policy gradient; DAPO drops it and samples more prompts.
* `overlong_mask`: truncated samples (length cap hit, no EOS) leave the loss AND the token /
  sequence counts (TRL ``mask_truncated_completions``).

Not here: the soft overlong punishment (a reward, Eq. 13) and the re-sampling loop (pipelines).
"""

from __future__ import annotations

import torch

from r1lab.algo._checks import AlgoError, check_group, check_shape


def informative_groups(
    scores_B: torch.Tensor, group_size: int, *, atol: float = 1e-6
) -> torch.Tensor:
    """Which groups to keep: those whose rewards are not all equal (max - min > ``atol``).

    Rows are ``num_prompts`` consecutive groups of ``group_size``; expand to rows with
    ``keep_G.repeat_interleave(group_size)``.

    Shapes:
        scores_B: (B,) with B = num_prompts * G; returns keep_G: (num_prompts,) bool
    """
    check_shape("scores_B", scores_B, (None,))
    check_group(scores_B.shape[0], group_size)
    if not atol >= 0:
        raise AlgoError(f"atol must be >= 0, got {atol!r}")
    r_PG = scores_B.detach().to(torch.float64).reshape(-1, group_size)
    if not bool(torch.isfinite(r_PG).all()):
        raise AlgoError("scores_B contains NaN or inf; fix the reward before filtering groups")
    return (r_PG.amax(-1) - r_PG.amin(-1)) > atol


def overlong_mask(mask_BT: torch.Tensor, truncated_B: torch.Tensor) -> torch.Tensor:
    """The response mask with every truncated row zeroed (DAPO overlong filtering).

    Shapes:
        mask_BT: (B, T); truncated_B: (B,) bool; returns mask_BT: (B, T), same dtype as input
    """
    check_shape("mask_BT", mask_BT, (None, None))
    check_shape("truncated_B", truncated_B, (mask_BT.shape[0],))
    if truncated_B.dtype != torch.bool:
        raise AlgoError(f"truncated_B must be a bool tensor, got dtype {truncated_B.dtype}")
    keep_B1 = (~truncated_B).to(mask_BT.device).unsqueeze(-1)
    return torch.where(keep_B1, mask_BT, torch.zeros_like(mask_BT))
