"""Whether a call's answer is right: checked against the float64 reference after the
warm-up call and again after the last timed call of every case."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..reference import relative_error
from ..spec import ConvSpec


def check_output(y: Any, spec: ConvSpec, ref: np.ndarray, floor: float, tol: float) -> tuple[str, str, float]:
    """(status, reason, max_rel_err) of a call's answer: its type, shape, dtype, then its error."""
    if not isinstance(y, np.ndarray):
        return "failed", f"returned {type(y).__name__}, not a numpy array", math.nan
    if tuple(y.shape) != spec.output_shape:
        return "failed", f"output shape {tuple(y.shape)}, expected {spec.output_shape}", math.nan
    if y.dtype != spec.np_dtype:
        return "failed", f"output dtype {y.dtype}, expected {spec.dtype}", math.nan
    err = relative_error(y, ref, floor)
    if not err <= tol:
        return "failed", f"max relative error {err:.3g} exceeds tolerance {tol:.3g}", err
    return "ok", "", err


def raised(stage: str, exc: BaseException) -> str:
    """A row's reason for ``exc`` raised at ``stage``: the type and the first line."""
    text = str(exc).strip().splitlines()
    return f"{stage} raised {type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def check_last(row: dict[str, Any], check: Callable[[Any], tuple[str, str, float]] | None, last: Any) -> None:
    """The last timed call's answer is checked like the warm-up's: a kernel
    whose state goes wrong over repeated calls is a ``failed`` row too."""
    if row["status"] != "ok" or check is None or last is None:
        return
    status, why, err = check(last)
    if status != "ok":
        row.update(status=status, reason=f"the last timed call: {why}")
    row["max_rel_err"] = max(row.get("max_rel_err") or 0.0, err) if err == err else row["max_rel_err"]


