"""NHWC <-> NCHW copies on the kernels' pool: the conversions of an algorithm run in
its other layout (:func:`convbench.layouts.convert`).

A job is one image row: its ``W x C`` block (a few KiB to a few tens of KiB)
is read and written within L1, so the strided side of the transpose costs no
more than the contiguous one. numpy's transposing copy of a 64-channel 56x56
image took 132 us on one thread (these kernels: 67 and 74 us), 212 us inside
FFT's NHWC call (6-9% of its two-thread time), and as Python takes the GIL.
Two kernels, one a direction, each with the loop order that measured fastest
for it: one kernel over flat arrays and runtime strides ran both at 174 us
against 67 and 74 (numba's index arithmetic kept LLVM from vectorising it).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._parallel import chunk_done, next_chunk, parallel_for


@njit(nogil=True, cache=True)
def _to_nchw_jobs(work, x, out):  # pragma: no cover - compiled
    """Rows ``n * H + i`` from ``work``: ``out[n, :, i, :] = x[n, i, :, :].T``."""
    _, h, w, c = x.shape
    while True:
        lo, hi = next_chunk(work)
        if lo >= hi:
            return
        for job in range(lo, hi):
            n, i = job // h, job % h
            for ch in range(c):
                for j in range(w):
                    out[n, ch, i, j] = x[n, i, j, ch]
        chunk_done(work, lo, hi)


@njit(nogil=True, cache=True)
def _to_nhwc_jobs(work, x, out):  # pragma: no cover - compiled
    """Rows ``n * H + i`` from ``work``: ``out[n, i, :, :] = x[n, :, i, :].T``."""
    _, c, h, w = x.shape
    while True:
        lo, hi = next_chunk(work)
        if lo >= hi:
            return
        for job in range(lo, hi):
            n, i = job // h, job % h
            for ch in range(c):
                for j in range(w):
                    out[n, i, j, ch] = x[n, ch, i, j]
        chunk_done(work, lo, hi)


def transpose_layout(x: np.ndarray, to: str) -> np.ndarray:
    """``x`` in the other 4-D activation layout: NHWC ``x`` to NCHW (``to="nchw"``) or NCHW
    ``x`` to NHWC (``to="nhwc"``), as a new C-contiguous array."""
    if x.ndim != 4 or to not in ("nchw", "nhwc"):
        raise ValueError(f"transpose_layout: a 4-D array to 'nchw' or 'nhwc', not {x.shape} to {to!r}")
    x = np.ascontiguousarray(x)
    n, a, b, c = x.shape
    if to == "nchw":  # x is (N, H, W, C)
        out = np.empty((n, c, a, b), x.dtype)
        parallel_for(_to_nchw_jobs, n * a, x, out, nbytes=2.0 * x.nbytes)
    else:  # x is (N, C, H, W)
        out = np.empty((n, b, c, a), x.dtype)
        parallel_for(_to_nhwc_jobs, n * b, x, out, nbytes=2.0 * x.nbytes)
    return out
