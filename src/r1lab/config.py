"""Typed, frozen configs built from YAML overlays and ``a.b=c`` command-line overrides.

Every default lives in one dataclass field. YAML files hold only overrides; a recipe may name a
``base:`` recipe it overlays. Unknown keys and wrong types raise `ConfigError` with the dotted path
of the offending key. Nothing mutates a config at run time: `dataclasses.replace` makes new ones.

Valid values (the one validation place). A config class declares what its fields allow with the
`constrained` decorator, on top of ``@dataclass``::

    @constrained(_group_size_fits_estimator, steps=count(), lr=above(0), eps_low=at_least(0))
    @dataclass(frozen=True)
    class GRPOConfig: ...

A field check is a callable ``value -> None | str`` (None: allowed; a string: what IS allowed);
a rule is ``cfg -> None | (key, what is allowed)`` for a constraint between fields. Subclasses
inherit their bases' checks. `validate` walks a whole config (nested sections, tuples of sections)
and raises `ConfigError` for the first violation as one line naming the key, the value and what
is allowed (``grpo.lr: expected a number > 0, got -1.0``); `from_dict` (so `load_config`) calls
it on the finished top-level config, i.e. before any data or model is loaded. Besides the
declared checks, every float must be finite (no nan/inf) in every config. Checks that need the
machine (`device`: does this CUDA device exist; `existing_file`) run at load time too. Two classes
that code also builds directly from flags or params, `DoctorConfig` and `SandboxConfig`, check in
``__post_init__`` instead (so at load time as well). docs/configuration.md lists the rules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from r1lab.errors import ConfigError

C = TypeVar("C")
RECIPE_DIR = Path(__file__).parent / "recipes"


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check (and minimally convert) `value` against the annotation `tp`."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{path}: expected one of {list(get_args(tp))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return from_dict(tp, value, path)
    if origin in (tuple, list):
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        return tuple(_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if tp is float:
        number = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            with contextlib.suppress(ValueError):
                number = float(value)
        if number is None:
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        if not math.isfinite(number):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    raise ConfigError(f"{path}: unsupported config type {_type_name(tp)}")


def from_dict(cls: type[C], data: dict[str, Any], path: str = "") -> C:
    """Build dataclass `cls` from `data`, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{path}.{key}" if path else key
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"unknown config key {dotted!r}; known keys here: {known}")
        default = _field_default(fields[key])
        if isinstance(value, dict) and dataclasses.is_dataclass(default):
            # a partial section overrides the field's own default instance, not the class defaults
            value = deep_merge(to_dict(default), value)
        kwargs[key] = _coerce(value, hints[key], dotted)
    try:
        cfg = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path or cls.__name__}: {exc}") from None
    if not path:  # the whole config is built: check every value once, before anything runs
        validate(cfg)
    return cfg


def _field_default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def to_dict(cfg: Any) -> Any:
    """Plain YAML-able dict of a (nested) config dataclass."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, tuple | list):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; mappings merge, everything else (lists included) replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_recipe_path(name_or_path: str) -> Path:
    """A recipe is a YAML path or the name of a bundled recipe (``r1_zero_tiny``)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ConfigError(f"recipe file not found: {path}")
        return path
    bundled = RECIPE_DIR / f"{name_or_path}.yaml"
    if bundled.exists():
        return bundled
    known = ", ".join(sorted(p.stem for p in RECIPE_DIR.glob("*.yaml")))
    raise ConfigError(f"no recipe {name_or_path!r}: not a file and not a bundled recipe ({known})")


def load_recipe_dict(name_or_path: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a recipe YAML, following its ``base:`` chain (overlays apply on top of their base)."""
    path = resolve_recipe_path(name_or_path)
    key = str(path.resolve())
    if key in _seen:
        raise ConfigError(f"recipe base cycle: {' -> '.join(_seen + (key,))}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping at top level")
    base = data.pop("base", None)
    if base is None:
        return data
    base_path = Path(base)
    if not base_path.suffix and not base_path.exists():
        base_ref = base
    else:
        base_ref = str(path.parent / base) if not base_path.is_absolute() else base
    return deep_merge(load_recipe_dict(base_ref, _seen + (key,)), data)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["grpo.lr=1e-4", "data.tasks=[arith]"]`` -> nested dict; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        dotted, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = dotted.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with another override")
        node[parts[-1]] = value
    return out


def load_config(cls: type[C], recipe: str | None, overrides: list[str] | None = None) -> C:
    """Recipe (name or path, optional) + overrides -> validated frozen config of type `cls`."""
    data = load_recipe_dict(recipe) if recipe else {}
    data = deep_merge(data, parse_overrides(overrides or []))
    return from_dict(cls, data)


def save_config(cfg: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


# --- valid values: field checks, rules between fields, and `validate` -------------------------

Check = Callable[[Any], str | None]  # value -> None (allowed) | what is allowed
Rule = Callable[[Any], "tuple[str, str] | None"]  # cfg -> None | (field, what is allowed)


def constrained(*rules: Rule, **checks: Check) -> Callable[[type[C]], type[C]]:
    """Class decorator (on top of ``@dataclass``): the checks of the named fields and the rules
    between fields that `validate` applies; merged with those a base class declares."""

    def deco(cls: type[C]) -> type[C]:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(checks) - names)
        if unknown:
            raise TypeError(f"{cls.__name__}: checks for unknown fields {unknown}")
        cls.__config_checks__ = {**getattr(cls, "__config_checks__", {}), **checks}
        cls.__config_rules__ = (*getattr(cls, "__config_rules__", ()), *rules)
        return cls

    return deco


def validate(cfg: Any, path: str = "") -> None:
    """Raise `ConfigError` for the first value of `cfg` (a config dataclass, walked recursively in
    field order) that its class's checks or rules do not allow."""
    checks: dict[str, Check] = getattr(type(cfg), "__config_checks__", {})
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        dotted = f"{path}.{f.name}" if path else f.name
        check = checks.get(f.name)
        if check is not None:
            allowed = check(value)
            if allowed is not None:
                raise ConfigError(f"{dotted}: expected {allowed}, got {value!r}")
        if dataclasses.is_dataclass(value):
            validate(value, dotted)
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    validate(item, f"{dotted}[{i}]")
    for rule in getattr(type(cfg), "__config_rules__", ()):
        broken = rule(cfg)
        if broken is not None:
            key, allowed = broken
            dotted = f"{path}.{key}" if path else key
            value = _dig(cfg, key)
            raise ConfigError(f"{dotted}: expected {allowed}, got {value!r}")


def _dig(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = cfg.get(part) if isinstance(cfg, dict) else getattr(cfg, part)
    return cfg


def count(minimum: int = 1) -> Check:
    """An integer >= `minimum` (a count: steps, samples, tokens, batch sizes)."""
    return lambda v: None if v >= minimum else f"an integer >= {minimum}"


def optional(check: Check) -> Check:
    """None (the documented default meaning) or a value `check` allows."""
    return lambda v: None if v is None else check(v)


def above(low: float) -> Check:
    return lambda v: None if v > low else f"a number > {low:g}"


def at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"a number >= {low:g}"


def within(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Check:
    """A number in the interval [low, high]; ``*_open`` excludes that end."""
    lo, hi = "(" if low_open else "[", ")" if high_open else "]"

    def check(v: float) -> str | None:
        ok_low = v > low if low_open else v >= low
        ok_high = v < high if high_open else v <= high
        return None if ok_low and ok_high else f"a number in {lo}{low:g}, {high:g}{hi}"

    return check


def one_of(choices: Sequence[Any]) -> Check:
    return lambda v: None if v in choices else f"one of {list(choices)}"


def prefix_of(sequence: Sequence[str]) -> Check:
    """A leading part of `sequence` (pipeline stages run in order)."""
    full = tuple(sequence)
    return lambda v: None if tuple(v) == full[: len(v)] else f"a prefix of {list(full)}"


def each(check: Check) -> Check:
    """Every item of a tuple passes `check`."""

    def run(values: Sequence[Any]) -> str | None:
        for v in values:
            allowed = check(v)
            if allowed is not None:
                return f"items that are each {allowed} ({v!r} is not)"
        return None

    return run


def registered(registry: Any, *, extra: Sequence[str] = ()) -> Check:
    """The name of an item of `registry` (a `r1lab.registry.Registry`), or one of `extra`."""

    def check(name: str) -> str | None:
        if name in extra or name in registry:
            return None
        return f"a registered {registry.kind} ({', '.join([*extra, *registry.names()])})"

    return check


def keyword_params(fn: Callable[..., Any]) -> set[str] | None:
    """The keyword parameters a registered function takes (its batch form's, ``fn.batch``, when
    it has one), beyond the data it is given (``c``, ``completions``, ``ctx``); None when it
    takes any (``**params``)."""
    ps = inspect.signature(getattr(fn, "batch", fn)).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in ps):
        return None
    return {p.name for p in ps if p.kind is not p.VAR_POSITIONAL} - {"c", "completions", "ctx"}


def takes_params(registry: Any) -> Rule:
    """A rule for a ``(name, params)`` section: each of ``params`` is a keyword parameter that the
    registered function takes (`keyword_params`)."""

    def rule(cfg: Any) -> tuple[str, str] | None:
        takes = keyword_params(registry.get(cfg.name))  # the name's own check ran first
        unknown = sorted(set(cfg.params) - takes) if takes is not None else []
        known = ", ".join(sorted(takes or ())) or "none"
        what = f"params the {registry.kind} {cfg.name!r} takes ({known}; not {unknown})"
        return ("params", what) if unknown else None

    return rule


def existing_file(*, allow_hf: bool = True) -> Check:
    """ "" (not set), ``hf:NAME[:split]`` (a `datasets` source) or the path of an existing file."""

    def check(value: str | None) -> str | None:
        if not value or (allow_hf and value.startswith("hf:")):
            return None
        p = Path(value)
        if p.is_file():
            return None
        what = "a directory" if p.is_dir() else "not found" if not p.exists() else "not a file"
        hf = " or hf:NAME[:split]" if allow_hf else ""
        return f"the path of an existing file{hf} ({value} is {what})"

    return check


def existing_dir() -> Check:
    """ "" (not set) or the path of an existing directory."""

    def check(value: str) -> str | None:
        if not value or Path(value).is_dir():
            return None
        what = "a file" if Path(value).exists() else "not found"
        return f"an existing directory ({value} is {what})"

    return check


def device() -> Check:
    """``auto`` or a torch device that exists on this machine (`r1lab.engines.device`)."""

    def check(spec: str) -> str | None:
        from r1lab.engines.device import device_problem

        return device_problem(spec)

    return check
