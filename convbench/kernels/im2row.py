"""im2row for NHWC in numba: the copy that ``im2col-numba`` pays and
Indirect Convolution avoids.

The matrix is ``(N, OH*OW, G, R*S*Cg)``: for each output pixel and group one
contiguous row, ordered ``(r, s, c)`` like the packed weights, so row ``p``
of group ``g`` is what the indirection buffer would point at tap by tap.
Padding taps are written as zeros.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..spec import ConvSpec
from ._intrinsics import data_ptr, ptr_add
from ._parallel import chunk_done, next_chunk, parallel_for


@njit(nogil=True, cache=True)
def im2row_jobs(work, x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, groups, col):  # pragma: no cover
    """Output rows from ``work`` (``n * OH + oh``) of :func:`im2row`."""
    n_img, h, w, c = x.shape
    cg = c // groups
    rowlen = col.shape[1]
    # Raw pointers, not per-row array views: the views made this copy run at
    # 3.5 GB/s instead of 26 GB/s, which would flatter Indirect Convolution.
    xp = data_ptr(x)
    cp = data_ptr(col)
    while True:
        lo, hi = next_chunk(work)
        if lo >= hi:
            return
        for job in range(lo, hi):
            n = job // oh
            i = job - n * oh
            for j in range(ow):
                dst = ptr_add(cp, ((n * oh + i) * ow + j) * rowlen)
                for g in range(groups):
                    base = g * kh * kw * cg
                    for r in range(kh):
                        ih = i * sh - top + r * dh
                        for s in range(kw):
                            iw = j * sw - left + s * dw
                            d = ptr_add(dst, base + (r * kw + s) * cg)
                            if 0 <= ih < h and 0 <= iw < w:
                                src = ptr_add(xp, ((n * h + ih) * w + iw) * c + g * cg)
                                for cc in range(cg):
                                    d[cc] = src[cc]
                            else:
                                for cc in range(cg):
                                    d[cc] = 0.0
        chunk_done(work, lo, hi)


def im2row(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, top: int,
           left: int, oh: int, ow: int, groups: int, col: np.ndarray) -> None:
    """Fill ``col`` ``(N*OH*OW, G*R*S*Cg)`` from NHWC ``x``; output rows are
    split over ``numba.get_num_threads()`` threads."""
    parallel_for(im2row_jobs, x.shape[0] * oh, x, kh, kw, sh, sw, dh, dw, top, left, oh, ow,
                 groups, col)


def im2row_bytes(spec: ConvSpec) -> int:
    """Size of the im2row matrix (0 when the copy is skipped)."""
    if spec.is_pointwise:
        return 0
    return (spec.batch * spec.output_height * spec.output_width * spec.kernel_h
            * spec.kernel_w * spec.in_channels * spec.itemsize)
