"""Whether a call's answer is right: checked against the reference after the
warm-up call and again after the last timed call of every case.

A float answer is judged by its relative error against the float64 reference
(``max_rel_err``); a ``u8s8`` answer by its largest difference from the exact
uint8 reference in output units (``max_abs_err_lsb``): 0 is ``ok``, 1 is
``ok`` with a note in ``reason`` (a float32 requantization may land on the
other side of a rounding tie), more is ``failed``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..quant import max_abs_err_lsb
from ..reference import relative_error
from ..spec import ConvSpec

#: The error columns a check fills: ``max_rel_err`` (float) or ``max_abs_err_lsb`` (u8s8).
Errors = dict[str, float]
Check = Callable[[Any], tuple[str, str, Errors]]


def lsb_note(lsb: int) -> str:
    """The note an ok u8s8 row carries when its answer is 1 LSB (within tolerance) off."""
    return (f"{lsb} LSB from the exact reference (allowed: float32 requantization can round a tie "
            "the other way)") if lsb else ""


def check_output(y: Any, spec: ConvSpec, ref: np.ndarray, floor: float, tol: float) -> tuple[str, str, Errors]:
    """(status, reason, error columns) of a call's answer: its type, shape, dtype, then its error."""
    if not isinstance(y, np.ndarray):
        return "failed", f"returned {type(y).__name__}, not a numpy array", {}
    if tuple(y.shape) != spec.output_shape:
        return "failed", f"output shape {tuple(y.shape)}, expected {spec.output_shape}", {}
    if y.dtype != spec.np_dtype:
        return "failed", f"output dtype {y.dtype}, expected {spec.np_dtype.name}", {}
    if spec.is_quantized:
        lsb = max_abs_err_lsb(y, ref)
        if lsb > tol:
            return "failed", f"{lsb} LSB from the exact reference, more than the {tol:g} allowed", \
                {"max_abs_err_lsb": lsb}
        return "ok", lsb_note(lsb), {"max_abs_err_lsb": lsb}
    err = relative_error(y, ref, floor)
    if not err <= tol:
        return "failed", f"max relative error {err:.3g} exceeds tolerance {tol:.3g}", {"max_rel_err": err}
    return "ok", "", {"max_rel_err": err}


def raised(stage: str, exc: BaseException) -> str:
    """A row's reason for ``exc`` raised at ``stage``: the type and the first line."""
    text = str(exc).strip().splitlines()
    return f"{stage} raised {type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _worst(a: Any, b: float) -> Any:
    """The larger of a row's error so far (``None``/NaN: none) and a new one."""
    if math.isnan(b):
        return a
    return b if a is None or math.isnan(a) else max(a, b)


def check_last(row: dict[str, Any], check: Check | None, last: Any) -> None:
    """The last timed call's answer is checked like the warm-up's: a kernel
    whose state goes wrong over repeated calls is a ``failed`` row too."""
    if row["status"] != "ok" or check is None or last is None:
        return
    status, why, errors = check(last)
    if status != "ok":
        row.update(status=status, reason=f"the last timed call: {why}")
    elif why and not row.get("reason"):
        row["reason"] = f"the last timed call: {why}"
    for column, err in errors.items():
        row[column] = _worst(row.get(column), err)
