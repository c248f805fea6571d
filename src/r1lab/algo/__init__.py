"""Pure tensor math of the GRPO family: advantages, KL estimators, policy losses, aggregation,
log-probs, DAPO filters, the sampler/trainer importance-sampling correction and the supervised
losses (SFT NLL, Bradley-Terry). Imports torch only; every function takes tensors and named
scalars.

Importing this package registers every estimator, loss and aggregation in its registry.
"""

from r1lab.algo._checks import AlgoError
from r1lab.algo.advantages import ADVANTAGES, compute_advantages, masked_whiten, returns_to_go
from r1lab.algo.aggregate import AGGREGATIONS, batch_normalizers, masked_mean
from r1lab.algo.filters import informative_groups, overlong_mask
from r1lab.algo.grpo_loss import policy_objective
from r1lab.algo.is_correction import IS_CORRECTIONS, mismatch_metrics, truncated_is_weights
from r1lab.algo.kl import KL_ESTIMATORS
from r1lab.algo.logprobs import entropy_from_logits, logprobs_from_hidden, token_logprobs
from r1lab.algo.losses import POLICY_LOSSES
from r1lab.algo.supervised import bradley_terry, nll_token_mean

__all__ = [
    "ADVANTAGES",
    "AGGREGATIONS",
    "IS_CORRECTIONS",
    "KL_ESTIMATORS",
    "POLICY_LOSSES",
    "AlgoError",
    "batch_normalizers",
    "bradley_terry",
    "compute_advantages",
    "entropy_from_logits",
    "informative_groups",
    "logprobs_from_hidden",
    "masked_mean",
    "masked_whiten",
    "mismatch_metrics",
    "nll_token_mean",
    "overlong_mask",
    "policy_objective",
    "returns_to_go",
    "token_logprobs",
    "truncated_is_weights",
]
