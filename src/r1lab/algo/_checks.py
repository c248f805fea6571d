"""Entry checks shared by the algo modules: shapes, scalar ranges and keyword parameters.

Every public algo function validates its inputs here first, so a shape that drifted from the
`Shapes:` block of its docstring fails loudly at the call site instead of broadcasting silently.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from r1lab.errors import R1LabError


class AlgoError(R1LabError, ValueError):
    """Bad input to an algo function: wrong shape, out-of-range scalar, unknown parameter.

    A `ValueError` for code that calls the math directly and an `R1LabError` for the CLI, which
    prints it as one line.
    """


def check_shape(name: str, t: torch.Tensor, shape: Sequence[int | None]) -> None:
    """Raise `AlgoError` unless ``t.shape`` matches ``shape`` (``None`` = any size)."""
    if not isinstance(t, torch.Tensor):
        raise AlgoError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    ok = t.dim() == len(shape) and all(s is None or s == d for s, d in zip(shape, t.shape))
    if not ok:
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise AlgoError(f"{name} must have shape {want}, got {tuple(t.shape)}")


def check_group(B: int, group_size: int) -> int:
    """Number of prompts in a batch of B rows made of consecutive groups of ``group_size``."""
    if not isinstance(group_size, int) or group_size < 1:
        raise AlgoError(f"group_size must be a positive int, got {group_size!r}")
    if B % group_size:
        raise AlgoError(
            f"batch of {B} rows is not a whole number of groups of {group_size}; "
            "rows must be num_prompts * group_size with each group's samples consecutive"
        )
    return B // group_size


def check_positive(name: str, value: float | None, *, allow_none: bool = True) -> None:
    if value is None:
        if not allow_none:
            raise AlgoError(f"{name} is required")
        return
    if not value > 0:
        raise AlgoError(f"{name} must be > 0, got {value!r}")


def float_mask(mask_BT: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The response mask as 0/1 floats of ``dtype`` (accepts bool, int or float masks)."""
    return mask_BT.to(dtype)


def float_dtype(t: torch.Tensor) -> torch.dtype:
    """``t``'s dtype if floating, else float32."""
    return t.dtype if t.is_floating_point() else torch.float32


def call_with_params(kind: str, name: str, fn: Callable, args: tuple, params: Mapping[str, Any]):
    """Call ``fn(*args, **params)``; an unknown keyword fails with the accepted ones listed."""
    sig = inspect.signature(fn)
    has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    if not has_var_kw:
        accepted = [
            p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
        ]
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise AlgoError(
                f"{kind} {name!r} got unknown parameter(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(accepted) or '(none)'}"
            )
    return fn(*args, **params)
