import pytest

from r1lab.config import ConfigError, from_dict, load_config, parse_overrides
from r1lab.pipelines.rl_config import RLConfig


def test_bundled_recipe_and_overrides():
    cfg = load_config(RLConfig, "r1_zero_tiny", ["grpo.steps=3", "data.tasks=[arith,countdown]"])
    assert cfg.grpo.steps == 3
    assert cfg.data.tasks == ("arith", "countdown")
    assert cfg.rewards[0].name == "accuracy"
    assert cfg.grpo.beta == 0.04


def test_unknown_key_names_the_dotted_path():
    with pytest.raises(ConfigError, match=r"grpo.stepz"):
        load_config(RLConfig, None, ["grpo.stepz=3"])


def test_wrong_type_is_rejected():
    with pytest.raises(ConfigError, match=r"grpo.steps: expected an integer"):
        load_config(RLConfig, None, ["grpo.steps=many"])
    with pytest.raises(ConfigError, match=r"grpo.lr: expected a number"):
        from_dict(RLConfig, {"grpo": {"lr": "fast"}})
    with pytest.raises(ConfigError, match=r"data.tasks: expected a list"):
        from_dict(RLConfig, {"data": {"tasks": "arith"}})


def test_overlay_recipes_follow_base(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("grpo:\n  steps: 7\n  lr: 0.1\n")
    over = tmp_path / "over.yaml"
    over.write_text("base: base.yaml\ngrpo:\n  lr: 0.2\n")
    cfg = load_config(RLConfig, str(over))
    assert (cfg.grpo.steps, cfg.grpo.lr) == (7, 0.2)


def test_missing_recipe_file_and_bad_override():
    with pytest.raises(ConfigError, match="not found"):
        load_config(RLConfig, "nope/missing.yaml")
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_overrides(["justakey"])


def test_configs_are_frozen():
    cfg = RLConfig()
    with pytest.raises(AttributeError):
        cfg.seed = 3  # type: ignore[misc]


def test_exponent_without_dot_is_a_number():
    cfg = load_config(RLConfig, None, ["grpo.lr=3e-4"])
    assert cfg.grpo.lr == 3e-4


def test_partial_section_keeps_the_fields_own_default_instance():
    from dataclasses import dataclass, field

    @dataclass(frozen=True)
    class Inner:
        a: int = 1
        b: int = 2

    @dataclass(frozen=True)
    class Outer:
        inner: Inner = field(default_factory=lambda: Inner(a=10, b=20))

    assert from_dict(Outer, {"inner": {"b": 3}}).inner == Inner(a=10, b=3)
    assert from_dict(Outer, {}).inner == Inner(a=10, b=20)
