"""Bundled RL recipes: each loads, names registered pieces that accept its parameters, states its
paper's choices, and trains two GRPO steps on a random "test"-size model without error."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import yaml

from r1lab.algo import (
    ADVANTAGES,
    AGGREGATIONS,
    KL_ESTIMATORS,
    POLICY_LOSSES,
    compute_advantages,
    policy_objective,
)
from r1lab.config import RECIPE_DIR, load_config
from r1lab.data.tasks import TASKS
from r1lab.data.templates import TEMPLATES
from r1lab.pipelines import grpo
from r1lab.pipelines.rl_config import RLConfig
from r1lab.rewards.combine import RewardComponent, check_spec

BASE = "r1_zero_tiny"


def based_on_base(name: str) -> bool:
    """True for the base RL recipe and every recipe whose ``base:`` chain reaches it."""
    seen = set()
    while name not in seen:
        if name == BASE:
            return True
        seen.add(name)
        data = yaml.safe_load((RECIPE_DIR / f"{name}.yaml").read_text()) or {}
        parent = data.get("base")
        if not isinstance(parent, str) or not (RECIPE_DIR / f"{parent}.yaml").exists():
            return False
        name = parent
    return False


RL_RECIPES = sorted(p.stem for p in RECIPE_DIR.glob("*.yaml") if based_on_base(p.stem))

# what each recipe must state (algorithms.md sections 3-8); every other field is the base's
PAPER_CHOICES = {
    "r1_zero_tiny": {
        "adv_estimator": "grpo",
        "loss_agg": "seq_mean_token_mean",
        "beta": 0.04,
        "mini_batches": 4,
        "mu": 1,
    },
    "dr_grpo_tiny": {
        "adv_estimator": "dr_grpo",
        "loss_agg": "seq_mean_token_sum_norm",
        "beta": 0.0,
    },
    "dapo_tiny": {
        "adv_estimator": "grpo",
        "loss_agg": "token_mean",
        "eps_low": 0.2,
        "eps_high": 0.28,
        "beta": 0.0,
        "dynamic_sampling": True,
        "dynamic_sampling_metric": "accuracy",
        "mask_truncated": True,
    },
    "rloo_tiny": {"adv_estimator": "rloo", "loss_agg": "token_mean"},
    "reinforce_pp_tiny": {
        "adv_estimator": "reinforce_pp",
        "adv_params": {"beta": 0.01},  # the KL in the token rewards (OpenRLHF)
        "loss_agg": "token_mean",
        "beta": 0.0,
    },
    "gspo_tiny": {
        "policy_loss": "gspo",
        "loss_agg": "seq_mean_token_mean",
        "eps_low": 3e-4,
        "eps_high": 4e-4,
        "beta": 0.0,
    },
}


def test_every_family_recipe_is_bundled_and_checked():
    assert set(PAPER_CHOICES) <= set(RL_RECIPES)
    assert set(RL_RECIPES) <= set(PAPER_CHOICES), "add the new recipe's choices to PAPER_CHOICES"


@pytest.mark.parametrize("name", RL_RECIPES)
def test_recipe_loads_and_its_pieces_are_registered(name):
    cfg = load_config(RLConfig, name)
    g = cfg.grpo
    for registry, piece in (
        (ADVANTAGES, g.adv_estimator),
        (POLICY_LOSSES, g.policy_loss),
        (AGGREGATIONS, g.loss_agg),
        (KL_ESTIMATORS, g.kl_estimator),
    ):
        assert piece in registry, f"{name}: {registry.kind} {piece!r} is not registered"
    check_spec(cfg.rewards)
    for task in cfg.data.tasks:
        TASKS.get(task)
    TEMPLATES.get(cfg.data.template)
    for key, want in PAPER_CHOICES[name].items():
        got = getattr(g, key)
        assert got == (want if isinstance(want, str | dict) else pytest.approx(want)), key
    # the pieces accept the recipe's parameters together (e.g. gspo only with its aggregation)
    scores = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    mask = torch.ones(8, 3)
    kl = {"kl_BT": torch.full((8, 3), 0.1)} if g.adv_params.get("beta") else {}
    adv = compute_advantages(g.adv_estimator, scores, mask, group_size=4, **g.adv_params, **kl)
    adv_BT = adv if adv.dim() == 2 else adv.unsqueeze(-1).expand(8, 3)
    logp = torch.full((8, 3), -1.0, requires_grad=True)
    loss, _ = policy_objective(
        logp, logp.detach(), torch.full((8, 3), -1.1), adv_BT, mask,
        loss=g.policy_loss, agg=g.loss_agg, kl=g.kl_estimator, beta=g.beta,
        eps_low=g.eps_low, eps_high=g.eps_high, const_len=g.const_len or 3,
    )  # fmt: skip
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logp.grad).all()


def test_overlays_are_a_few_lines():
    for name in RL_RECIPES:
        if name == BASE:
            continue
        text = (RECIPE_DIR / f"{name}.yaml").read_text()
        body = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        assert body[0] == f"base: {BASE}" and len(body) <= 20, name


# -- two GRPO steps per recipe -------------------------------------------------------------------

# a random model scores 0 on accuracy and format; the cosine length reward over characters gives
# the completions of a group different scores, so every recipe has a learning signal
SIGNAL = RewardComponent("cosine", 1.0, {"unit": "chars", "max_len": 100, "r_exceed": None})
SMOKE = [
    "threads=1",
    "progress=false",
    "grpo.steps=2",
    "grpo.prompts_per_step=2",
    "grpo.mini_batches=2",
    "grpo.group_size=4",
    "data.n_train=16",
    "data.n_test=4",
    "sampling.max_new_tokens=24",  # above dapo's overlong cache_len (16)
    "grpo.dynamic_sampling_metric=reward",  # dapo: accuracy is 0 everywhere, the signal is not
]


@pytest.mark.parametrize("name", RL_RECIPES)
def test_recipe_trains_two_steps_on_a_random_model(name, tmp_path, tiny_model, tiny_tokenizer):
    torch.set_num_threads(1)
    cfg = load_config(RLConfig, name, SMOKE)
    cfg = replace(cfg, rewards=(*cfg.rewards, SIGNAL))
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}
    result = grpo.run(
        cfg, run_dir=tmp_path, model=tiny_model, tokenizer=tiny_tokenizer, log=lambda _: None
    )
    rows = result.metrics
    assert [r["step"] for r in rows] == [0, 1]
    assert all(torch.isfinite(torch.tensor([r["loss"], r["grad_norm"]])).all() for r in rows)
    trained = any(r["grad_norm"] > 0 and r["skipped_nonfinite"] == 0 for r in rows)
    # dapo masks truncated samples out of the loss: a random model may have none left
    assert trained or name == "dapo_tiny", f"{name}: no step had a gradient"
    changed = any(not torch.equal(p, before[n]) for n, p in tiny_model.named_parameters())
    assert changed == trained
    assert (result.checkpoint / "config.json").exists()
