"""im2col for NCHW in numba: the B operand of ``W(Kg x Cg*R*S) @ cols``.

``cols[n, g, (c*R + r)*S + s, oh*OW + ow]`` is the input pixel that tap
``(r, s)`` of output pixel ``(oh, ow)`` reads in channel ``c`` of group ``g``
(zero in the padding), so the GEMM's result is NCHW without a transpose.
The NHWC twin is :mod:`convbench.kernels.im2row`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._parallel import chunk_done, next_chunk, parallel_for


@njit(nogil=True, cache=True)
def im2col_nchw_jobs(work, x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, cols):  # pragma: no cover
    """Input planes from ``work`` (``n * C + c``) of :func:`im2col_nchw`."""
    _, c, h, w = x.shape
    groups = cols.shape[1]
    cg = c // groups
    while True:
        lo, hi = next_chunk(work)
        if lo >= hi:
            return
        for plane in range(lo, hi):
            n = plane // c
            ch = plane - n * c
            g = ch // cg
            ci = ch - g * cg
            for r in range(kh):
                for s in range(kw):
                    dst = cols[n, g, (ci * kh + r) * kw + s]
                    for i in range(oh):
                        hi_ = i * sh + r * dh - top
                        row_inside = 0 <= hi_ < h
                        for j in range(ow):
                            wj = j * sw + s * dw - left
                            if row_inside and 0 <= wj < w:
                                dst[i * ow + j] = x[n, ch, hi_, wj]
                            else:
                                dst[i * ow + j] = 0
        chunk_done(work, lo, hi)


def im2col_nchw(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, top: int,
                left: int, oh: int, ow: int, cols: np.ndarray) -> None:
    """Fill ``cols`` ``(N, G, Cg*R*S, OH*OW)`` from NCHW ``x``, planes split over the threads."""
    parallel_for(im2col_nchw_jobs, x.shape[0] * x.shape[1], x, kh, kw, sh, sw, dh, dw, top, left,
                 oh, ow, cols, nbytes=2.0 * cols.nbytes)
