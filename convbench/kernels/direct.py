"""The seven-loop direct convolution (NHWC), the correctness baseline.

Loops ``n, oh, ow, r, s, c, k`` (and ``g``) with nothing clever but the loop
order: weights are repacked to ``(G, R, S, Cg, Kg)`` so the innermost loop
runs over output channels, contiguous in both the weights and the NHWC
output row, which LLVM vectorises.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._parallel import chunk_done, next_chunk, parallel_for


@njit(nogil=True, fastmath=True, cache=True)
def direct_jobs(work, x, w, sh, sw, dh, dw, top, left, out):  # pragma: no cover - compiled
    """Output rows from ``work`` (``n * OH + oh``) of :func:`direct_nhwc`."""
    n_img, h, wd, _ = x.shape
    groups, kh, kw, cg, kg = w.shape
    _, oh, ow, _ = out.shape
    while True:
        lo, hi = next_chunk(work)
        if lo >= hi:
            return
        for job in range(lo, hi):
            n = job // oh
            i = job - n * oh
            for j in range(ow):
                y = out[n, i, j]
                y[:] = 0.0
                for g in range(groups):
                    for r in range(kh):
                        ih = i * sh - top + r * dh
                        if ih < 0 or ih >= h:
                            continue
                        for s in range(kw):
                            iw = j * sw - left + s * dw
                            if iw < 0 or iw >= wd:
                                continue
                            for c in range(cg):
                                xv = x[n, ih, iw, g * cg + c]
                                for k in range(kg):
                                    y[g * kg + k] += xv * w[g, r, s, c, k]
        chunk_done(work, lo, hi)


def pack_direct(weight: np.ndarray, groups: int, dtype: np.dtype | str) -> np.ndarray:
    """OIHW -> ``(G, R, S, Cg, Kg)``, output channels innermost."""
    k, cg, r, s = weight.shape
    kg = k // groups
    return np.ascontiguousarray(
        weight.reshape(groups, kg, cg, r, s).transpose(0, 3, 4, 2, 1), dtype=dtype
    )


def direct_nhwc(x: np.ndarray, w: np.ndarray, sh: int, sw: int, dh: int, dw: int, top: int,
                left: int, out: np.ndarray) -> None:
    """``out`` (N, OH, OW, K) = conv of NHWC ``x`` with ``w`` (G, R, S, Cg, Kg);
    output rows are split over ``numba.get_num_threads()`` threads."""
    parallel_for(direct_jobs, out.shape[0] * out.shape[1], x, w, sh, sw, dh, dw, top, left, out)
