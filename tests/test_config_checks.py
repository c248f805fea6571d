"""The validation place of the typed configs (`r1lab.config.constrained` / `validate`): every
bundled recipe and every config class's defaults are valid; checks are inherited, name the dotted
key, and run on the finished config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from r1lab.config import (
    ConfigError,
    above,
    constrained,
    count,
    existing_file,
    from_dict,
    load_config,
    validate,
    within,
)
from r1lab.pipelines.distill_config import DistillConfig
from r1lab.pipelines.distill_vs_rl_config import DistillVsRLConfig
from r1lab.pipelines.r1_config import R1Config
from r1lab.pipelines.rl_config import RLConfig
from r1lab.pipelines.rs_config import RSConfig
from r1lab.pipelines.sft_config import SFTConfig

TOP_LEVEL = (RLConfig, SFTConfig, RSConfig, R1Config, DistillConfig, DistillVsRLConfig)


def _classes(cls, seen):
    if cls in seen:
        return
    seen.add(cls)
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        items = default if isinstance(default, tuple) else (default,)
        for item in items:
            if dataclasses.is_dataclass(item):
                _classes(type(item), seen)


@pytest.mark.parametrize("cls", TOP_LEVEL, ids=lambda c: c.__name__)
def test_defaults_are_valid(cls):
    validate(cls())


def test_every_config_section_declares_checks_or_has_nothing_to_check():
    """A new config class with a count or a rate must say what it allows (the one place)."""
    from r1lab.eval.run import EvalRunConfig

    seen: set = set()
    for cls in (*TOP_LEVEL, EvalRunConfig):
        _classes(cls, seen)
    # sections with no int/float field beyond seeds, or checked in __post_init__ (doctor)
    exempt = {"ReadableFormat", "ReasoningTags", "LoggingConfig", "FilterSpec", "CorpusMix"}
    exempt |= {"RewardComponent", "DoctorConfig", "DistillArmConfig", "StudentSection"}
    exempt |= {"TeacherModelConfig", "TeacherSection"}  # inherit ModelConfig's / nothing numeric
    missing = [
        c.__name__ for c in seen if c.__name__ not in exempt and not hasattr(c, "__config_checks__")
    ]
    assert missing == []


@pytest.mark.parametrize(
    "cls, recipe",
    [
        (RLConfig, "r1_zero_tiny"),
        (RLConfig, "dapo_tiny"),
        (RLConfig, "rloo_tiny"),
        (RLConfig, "reinforce_pp_tiny"),
        (RLConfig, "r1_zero_qwen_math_1p5b"),
        (R1Config, "r1_tiny"),
        (DistillConfig, "distill_tiny"),
        (DistillVsRLConfig, "distill_vs_rl_tiny"),
    ],
)
def test_bundled_recipes_are_valid(cls, recipe):
    load_config(cls, recipe)


@constrained(n=count(), rate=within(0, 1, low_open=True))
@dataclass(frozen=True)
class _Base:
    n: int = 1
    rate: float = 0.5


def _n_below_cap(cfg):
    return None if cfg.n <= cfg.cap else ("n", f"an integer <= cap={cfg.cap}")


@constrained(_n_below_cap, lr=above(0))
@dataclass(frozen=True)
class _Child(_Base):
    cap: int = 4
    lr: float = 0.1


@dataclass(frozen=True)
class _Outer:
    child: _Child = dataclasses.field(default_factory=_Child)
    items: tuple[_Child, ...] = ()


def test_checks_are_inherited_and_name_the_dotted_key():
    with pytest.raises(ConfigError, match=r"^child\.n: expected an integer >= 1, got 0$"):
        from_dict(_Outer, {"child": {"n": 0}})
    with pytest.raises(ConfigError, match=r"^child\.lr: expected a number > 0, got -1\.0$"):
        from_dict(_Outer, {"child": {"lr": -1}})
    with pytest.raises(ConfigError, match=r"^items\[1\]\.rate: expected a number in \(0, 1\]"):
        from_dict(_Outer, {"items": [{}, {"rate": 0}]})


def test_rules_between_fields_report_the_field_and_its_value():
    with pytest.raises(ConfigError, match=r"^child\.n: expected an integer <= cap=4, got 5$"):
        from_dict(_Outer, {"child": {"n": 5}})
    assert from_dict(_Outer, {"child": {"n": 5, "cap": 5}}).child.n == 5


def test_non_finite_numbers_are_rejected_everywhere():
    for value in (".nan", ".inf", "-.inf"):
        with pytest.raises(ConfigError, match=r"expected a finite number"):
            load_config(RLConfig, None, [f"grpo.max_grad_norm={value}"])


def test_group_size_one_is_allowed_only_without_a_group_baseline():
    for est in ("grpo", "dr_grpo", "rloo", "reinforce_pp_baseline"):
        with pytest.raises(ConfigError, match=r"grpo.group_size: expected an integer >= 2"):
            load_config(RLConfig, None, ["grpo.group_size=1", f"grpo.adv_estimator={est}"])
    cfg = load_config(RLConfig, None, ["grpo.group_size=1", "grpo.adv_estimator=reinforce_pp"])
    assert cfg.grpo.group_size == 1


def test_existing_file_allows_unset_and_hf_sources_and_names_what_the_path_is(tmp_path):
    check = existing_file()
    f = tmp_path / "rows.jsonl"
    f.write_text("{}\n")
    assert check("") is None and check(None) is None and check("hf:gsm8k:test") is None
    assert check(str(f)) is None
    assert "is a directory" in check(str(tmp_path))
    assert "is not found" in check(str(tmp_path / "nope.jsonl"))
    assert existing_file(allow_hf=False)("hf:gsm8k") is not None


def test_device_check_follows_the_machines_gpus(monkeypatch):
    import torch

    from r1lab.engines.device import device_problem

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert device_problem("cuda") is None and device_problem("cuda:1") is None
    assert "2 CUDA GPUs" in device_problem("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert "no CUDA GPU" in device_problem("cuda:0")
    assert device_problem("cpu") is None and device_problem("auto") is None


@pytest.mark.parametrize(
    "override, message",
    [
        ("extractor=boxd", "extractor: expected a registered answer extractor (|answer_or_boxed, "),
        ("verifier=mat", "verifier: expected a registered verifier (|countdown, "),
        ("benchmarks=[gsm8k, aime]", "each a registered benchmark (|gsm8k, "),
        ("format_reward=fmt", "format_reward: expected a registered reward (|format_r1, "),
    ],
)
def test_eval_names_are_checked_at_load_with_the_known_ones(override, message):
    from r1lab.eval.run import EvalRunConfig

    load_config(EvalRunConfig, None, ["benchmarks=[gsm8k]", "extractor=boxed", "verifier=math"])
    with pytest.raises(ConfigError) as err:
        load_config(EvalRunConfig, None, [override])
    assert all(part in str(err.value) for part in message.split("|"))  # then a known name
