"""Bounds checks for the kernels that read and write through raw pointers.

numba's bounds checking (``@njit(boundscheck=True)``, or
``NUMBA_BOUNDSCHECK=1`` for every kernel at once) checks array indexing, but
the GEMM and depthwise micro-kernels load and store through pointers
(:mod:`._intrinsics`), which it cannot see. So when that mode is on, their
drivers first call a check that computes, from the arguments alone, the
lowest and highest element each kernel will touch in each of its arrays and
compares them with the array's size: an indirection buffer, a packing or a
group count that would send a kernel outside its arrays is an ``IndexError``
instead of a read of whatever memory lies there. The arithmetic of each
check mirrors its kernel's indexing; change one, change the other. (The
Winograd tile transforms of :mod:`.winograd_tiled` and the blocked direct
kernel of :mod:`.direct_blocked` use pointers too, but every address they
form is bounded by the array shapes their drivers compare on every call, in
any mode.)

Off (the default, and every timed run), a driver pays one attribute read.
The test suite runs the conformance battery once in this mode, in a
subprocess with its own ``NUMBA_CACHE_DIR``: numba's on-disk cache does not
key compiled code by the bounds-check setting, and would otherwise hand back
the unchecked kernels.
"""

from __future__ import annotations

import numba
import numpy as np


def enabled() -> bool:
    """Whether numba compiles with bounds checks (``NUMBA_BOUNDSCHECK=1``)."""
    return bool(numba.config.BOUNDSCHECK)


def require(kernel: str, name: str, array: np.ndarray, lo: int, hi: int) -> None:
    """``IndexError`` unless elements from ``work`` of the flat ``array`` exist."""
    if hi >= lo and (lo < 0 or hi >= array.size):
        raise IndexError(
            f"{kernel} would touch {name}[{lo}..{hi}], outside its {array.size} elements"
        )


def require_offsets(kernel: str, offs: np.ndarray, x: np.ndarray, nimg: int, img_stride: int,
                    row_len: int, zero: np.ndarray) -> None:
    """A table of row offsets (``< 0``: the zero vector) keeps every row of
    ``row_len`` elements inside ``x`` for each of ``nimg`` images, and inside
    ``zero`` for the padding rows."""
    real = offs[offs >= 0]
    if real.size:
        require(kernel, "the input", x, int(real.min()),
                (nimg - 1) * img_stride + int(real.max()) + row_len - 1)
    if real.size < offs.size:
        require(kernel, "the zero vector", zero, 0, row_len - 1)
