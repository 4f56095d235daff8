"""Arrays the micro-kernels load and store as SIMD vectors, aligned to a cache line."""

from __future__ import annotations

import math

import numpy as np

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
    raw = np.empty(n * dtype.itemsize + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + n * dtype.itemsize].view(dtype).reshape(shape)
