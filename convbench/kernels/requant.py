"""The requantization of the u8s8 kernels (:mod:`convbench.quant`'s contract), one home.

A u8s8 kernel sums ``x * w`` (u8 times s8) in int32 and starts every output
channel ``k`` from its zero-point correction ``corr[k] = bias[k] - x_zero *
sum(w[k])``, so the accumulator is ``bias[k] + sum((x - x_zero) * w[k])``
(padding taps read ``x_zero`` and add nothing). The output is then::

    y = clamp(rint(float32(acc) * mult[k]) + y_zero, 0, 255)

in float32, ``mult`` = :meth:`~convbench.quant.QuantizedWeight.multiplier`.
The vector form is :func:`~convbench.kernels._qintrinsics.vrequant`;
:func:`requant_one` is the same arithmetic for one value (the tiles' edges),
so both give the same bits.

The int32 accumulator holds ``sum(x * w)`` exactly while the reduction has at
most :data:`MAX_TERMS` terms (255 * 128 * terms < 2**31).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..quant import QuantizedWeight

#: Most terms (C/groups * R * S) a u8s8 reduction may have and still fit int32.
MAX_TERMS = (2**31 - 1) // (255 * 128)


def correction(qw: QuantizedWeight) -> np.ndarray:
    """``bias[k] - x_zero * sum(w[k])`` per output channel, int32 (what the accumulators start from)."""
    wsum = qw.weight.reshape(qw.weight.shape[0], -1).astype(np.int64).sum(axis=1)
    return (qw.bias.astype(np.int64) - int(qw.x_zero) * wsum).astype(np.int32)


def multiplier(qw: QuantizedWeight) -> np.ndarray:
    """``x_scale * w_scale[k] / y_scale`` per output channel, float32, C-contiguous."""
    return np.ascontiguousarray(qw.multiplier(), dtype=np.float32)


@njit(nogil=True, cache=True, inline="always")  # no fastmath: IEEE rint and clamp
def requant_one(acc, mult, y_zero):  # pragma: no cover - compiled
    """One u8 output from an int32 accumulator (correction included), float32 ``mult``
    and float32 ``y_zero``."""
    f = np.rint(np.float32(acc) * mult) + y_zero
    if f < np.float32(0.0):
        f = np.float32(0.0)
    if f > np.float32(255.0):
        f = np.float32(255.0)
    return np.uint8(np.int32(f))


def too_many_terms(terms: int) -> str | None:
    """The reason a reduction of ``terms`` terms cannot run in int32, or ``None``."""
    if terms > MAX_TERMS:
        return (f"a reduction of {terms} u8 x s8 terms (C/groups * R * S) could overflow the int32 "
                f"accumulator (at most {MAX_TERMS})")
    return None
