"""Arrays the micro-kernels load and store as SIMD vectors, aligned to a cache line."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Byte alignment: a cache line, so no vector load or store of a row
#: straddles two (numpy's large arrays start 16 bytes into a page, which
#: splits every other 64-byte load on AVX-512).
ALIGN = 64


def aligned_empty(shape: int | tuple[int, ...], dtype: np.dtype | str) -> np.ndarray:
    """``np.empty(shape, dtype)``, C-contiguous, starting on an :data:`ALIGN`-byte
    boundary: for what the micro-kernels load and store as vectors (packed
    weights, outputs, workspaces), so that no row's vectors split cache lines
    when the row length is a multiple of the vector."""
    dtype = np.dtype(dtype)
    n = math.prod(shape) if isinstance(shape, (tuple, list)) else int(shape)  # np.prod: 3 us a call
    size = dtype.itemsize
    if dtype.kind in "biuc" or dtype in (np.float32, np.float64):
        # numpy aligns it to its element, which divides ALIGN: whole elements reach the boundary
        raw = np.empty(n + ALIGN // size, dtype)
        start = (-_address(raw) % ALIGN) // size
        return raw[start:start + n].reshape(shape)
    raw = np.empty(n * size + ALIGN, np.uint8)  # float16, records: counted in bytes
    start = -_address(raw) % ALIGN
    return raw[start:start + n * size].view(dtype).reshape(shape)


@njit(cache=True)
def _address(a):  # pragma: no cover - compiled
    # numpy's ``a.ctypes.data`` builds a ctypes object: 3-5 us a call on the 2-vCPU VMs, more
    # than the rest of a small layer's allocation; a compiled call reads it in under 1 us
    return a.ctypes.data
