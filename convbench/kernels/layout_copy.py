"""NHWC <-> NCHW copies on the kernels' pool: the conversions of an algorithm run in
its other layout (:func:`convbench.layouts.convert`).

A job is one image row: its ``W x C`` block (a few KiB to a few tens of KiB)
is read and written within L1, so the strided side of the transpose costs no
more than the contiguous one. numpy's transposing copy of a 64-channel 56x56
image took 132 us on one thread (this kernel: 68 and 73 us), 212 us inside
FFT's NHWC call (6-9% of its two-thread time), and as Python takes the GIL.
One kernel serves both directions: it copies between two arrays indexed
(N, H, W, C), one of them a transposed view of the NCHW side, as fast as two
kernels with the NCHW index written out (67 and 74 us), where one kernel over
flat arrays and runtime strides took 174.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._parallel import chunk_done, next_chunk, parallel_for


@njit(nogil=True, cache=True)
def _copy_rows_jobs(work, src, dst):  # pragma: no cover - compiled
    """Rows ``n * H + i`` from ``work``: ``dst[n, i] = src[n, i]``, both indexed ``(N, H, W, C)``
    (one of them a transposed view of an NCHW array), channels outer within the row."""
    _, h, w, c = src.shape
    while True:
        lo, hi = next_chunk(work)
        if lo >= hi:
            return
        for job in range(lo, hi):
            n, i = job // h, job % h
            for ch in range(c):
                for j in range(w):
                    dst[n, i, j, ch] = src[n, i, j, ch]
        chunk_done(work, lo, hi)


def transpose_layout(x: np.ndarray, to: str) -> np.ndarray:
    """``x`` in the other 4-D activation layout: NHWC ``x`` to NCHW (``to="nchw"``) or NCHW
    ``x`` to NHWC (``to="nhwc"``), as a new C-contiguous array."""
    if x.ndim != 4 or to not in ("nchw", "nhwc"):
        raise ValueError(f"transpose_layout: a 4-D array to 'nchw' or 'nhwc', not {x.shape} to {to!r}")
    x = np.ascontiguousarray(x)
    if to == "nchw":  # x is (N, H, W, C)
        n, h, w, c = x.shape
        out = np.empty((n, c, h, w), x.dtype)
        src, dst = x, out.transpose(0, 2, 3, 1)
    else:  # x is (N, C, H, W)
        n, c, h, w = x.shape
        out = np.empty((n, h, w, c), x.dtype)
        src, dst = x.transpose(0, 2, 3, 1), out
    parallel_for(_copy_rows_jobs, n * h, src, dst, nbytes=2.0 * x.nbytes)  # same (N, H, W, C) shape
    return out
