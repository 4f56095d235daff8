"""im2row for NHWC in numba: the copy that ``im2col-numba`` pays and
Indirect Convolution avoids.

The matrix is ``(N, OH*OW, G, R*S*Cg)``: for each output pixel and group one
contiguous row, ordered ``(r, s, c)`` like the packed weights, so row ``p``
of group ``g`` is what the indirection buffer would point at tap by tap.
Padding taps are written as zeros (``pad``: the u8s8 input's zero point).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numba import njit

from ..spec import ConvSpec
from ._intrinsics import data_ptr, ptr_add
from ._parallel import chunk_done, next_chunk, parallel_for
from .aligned import aligned_empty


@njit(nogil=True, cache=True)
def im2row_jobs(work, x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, groups, col, pad):  # pragma: no cover
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
                                    d[cc] = pad
        chunk_done(work, lo, hi)


def im2row(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, top: int,
           left: int, oh: int, ow: int, groups: int, col: np.ndarray, pad: int = 0) -> None:
    """Fill ``col`` ``(N*OH*OW, G*R*S*Cg)`` from NHWC ``x`` (padding: ``pad``); output
    rows are split over ``numba.get_num_threads()`` threads."""
    parallel_for(im2row_jobs, x.shape[0] * oh, x, kh, kw, sh, sw, dh, dw, top, left, oh, ow,
                 groups, col, col.dtype.type(pad), nbytes=2.0 * col.nbytes)


def im2row_bytes(spec: ConvSpec) -> int:
    """Size of the im2row matrix (0 when the copy is skipped)."""
    if spec.is_pointwise:
        return 0
    return (spec.batch * spec.output_height * spec.output_width * spec.kernel_h
            * spec.kernel_w * spec.in_channels * spec.itemsize)


def tap_major_copy(spec: ConvSpec, pad: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """The tap-major im2col copy of an NHWC input, for depthwise layers: a function from
    ``x`` to ``col`` ``(R*S, N, OH, OW, C)``, for each tap the input pixels it reads for
    every output pixel, channels innermost, ``pad`` (zero; a u8s8 input's zero point)
    where it reads padding.

    Each tap's block is filled by one numpy copy whose contiguous runs are whole
    image rows (OW*C values); a pixel-major layout copied 128-byte runs and
    spent 15x longer in numpy's loop overhead. Channels innermost is what a
    depthwise kernel loads as vectors (``im2col``'s einsum, ``im2col-numba``'s
    depthwise kernel).
    """
    kh, kw = spec.kernel
    sh, sw = spec.stride
    dh, dw = spec.dilation
    top, left = spec.pad_top, spec.pad_left
    n, oh, ow, c = spec.batch, spec.output_height, spec.output_width, spec.in_channels
    h, w = spec.height, spec.width
    dtype = spec.np_dtype
    # Per tap, the output rows/columns whose input pixel is inside the image, and
    # that first input pixel: i*sh - top + r*dh in [0, h) for i in [i0, i1).
    taps = []
    for r in range(kh):
        i0 = max(0, -((r * dh - top) // sh))
        i1 = max(i0, min(oh, (h - 1 + top - r * dh) // sh + 1))
        for s in range(kw):
            j0 = max(0, -((s * dw - left) // sw))
            j1 = max(j0, min(ow, (w - 1 + left - s * dw) // sw + 1))
            taps.append((i0, i1, j0, j1, i0 * sh - top + r * dh, j0 * sw - left + s * dw))

    def pack(x: np.ndarray) -> np.ndarray:
        col = aligned_empty((len(taps), n, oh, ow, c), dtype)
        for t, (i0, i1, j0, j1, y0, x0) in enumerate(taps):
            # zeros only where the tap reads padding (border strips), then the copy
            col[t, :, :i0] = pad
            col[t, :, i1:] = pad
            col[t, :, i0:i1, :j0] = pad
            col[t, :, i0:i1, j1:] = pad
            if i1 > i0 and j1 > j0:
                col[t, :, i0:i1, j0:j1] = x[:, y0:y0 + (i1 - i0 - 1) * sh + 1:sh, x0:x0 + (j1 - j0 - 1) * sw + 1:sw]
        return col

    return pack


@njit(nogil=True, cache=True)
def tap_major_band_jobs(x, kh, kw, sh, sw, dh, dw, top, left, i0, jb, col, pad):  # pragma: no cover - compiled
    """``col[t, i, j]`` = the input pixel tap ``t`` of output pixel ``(i0 + i, jb + j)`` reads in
    the one NHWC image ``x`` (``H, W, C``), ``pad`` where it reads padding.

    Per tap and output row, the columns that read inside the image are one run
    (contiguous in ``x`` too at stride 1), the rest padding at both ends; raw
    pointers, as in :func:`im2row_jobs`, for the same reason."""
    h, w, c = x.shape
    rows, ow = col.shape[1], col.shape[2]
    xp, cp = data_ptr(x), data_ptr(col)
    for t in range(kh * kw):
        r, s = t // kw, t % kw
        # the band's first and last+1 columns whose input is inside the image
        j0 = min(ow, max(0, -((s * dw - left) // sw) - jb))
        j1 = max(j0, min(ow, (w - 1 + left - s * dw) // sw + 1 - jb))
        for i in range(rows):
            ih = (i0 + i) * sh - top + r * dh
            dst = ptr_add(cp, (t * rows + i) * ow * c)
            if ih < 0 or ih >= h:
                for e in range(ow * c):
                    dst[e] = pad
                continue
            for e in range(j0 * c):
                dst[e] = pad
            for e in range(j1 * c, ow * c):
                dst[e] = pad
            src = ptr_add(xp, (ih * w + (jb + j0) * sw - left + s * dw) * c)
            run = ptr_add(dst, j0 * c)
            if sw == 1:
                for e in range((j1 - j0) * c):
                    run[e] = src[e]
            else:
                for j in range(j1 - j0):
                    for cc in range(c):
                        run[j * c + cc] = src[j * sw * c + cc]
