"""im2col / im2row: copy every receptive field into one row (or column).

``im2row_nhwc`` writes ``cols[g, m, (r*S + s)*Cg + c]`` for output pixel
``m = (n*OH + oh)*OW + ow``: one contiguous (M x R*S*Cg) matrix per group,
the A operand of a row-major GEMM. ``im2col_nchw`` writes
``cols[n, g, (c*R + r)*S + s, oh*OW + ow]``: the B operand of
``W(Kg x Cg*R*S) @ cols``, which yields NCHW output without a transpose.
Taps that fall in the padding are written as zeros.
"""

from __future__ import annotations

from numba import njit, prange


@njit(cache=True, parallel=True)
def im2row_nhwc(x, kh, kw, sh, sw, dh, dw, pad_top, pad_left, oh, ow, cols):  # pragma: no cover
    """x (N, H, W, C) -> cols (G, N*OH*OW, R*S*Cg)."""
    n_img, h, w, c = x.shape
    groups = cols.shape[0]
    cg = c // groups
    for row in prange(n_img * oh):
        n = row // oh
        i = row % oh
        for j in range(ow):
            m = row * ow + j
            for r in range(kh):
                hi = i * sh + r * dh - pad_top
                for s in range(kw):
                    wj = j * sw + s * dw - pad_left
                    inside = 0 <= hi < h and 0 <= wj < w
                    base = (r * kw + s) * cg
                    for g in range(groups):
                        if inside:
                            for ch in range(cg):
                                cols[g, m, base + ch] = x[n, hi, wj, g * cg + ch]
                        else:
                            for ch in range(cg):
                                cols[g, m, base + ch] = 0


@njit(cache=True, parallel=True)
def im2col_nchw(x, kh, kw, sh, sw, dh, dw, pad_top, pad_left, oh, ow, cols):  # pragma: no cover
    """x (N, C, H, W) -> cols (N, G, Cg*R*S, OH*OW)."""
    n_img, c, h, w = x.shape
    groups = cols.shape[1]
    cg = c // groups
    for plane in prange(n_img * c):
        n = plane // c
        ch = plane % c
        g = ch // cg
        ci = ch % cg
        for r in range(kh):
            for s in range(kw):
                k = (ci * kh + r) * kw + s
                for i in range(oh):
                    hi = i * sh + r * dh - pad_top
                    for j in range(ow):
                        wj = j * sw + s * dw - pad_left
                        if 0 <= hi < h and 0 <= wj < w:
                            cols[n, g, k, i * ow + j] = x[n, ch, hi, wj]
                        else:
                            cols[n, g, k, i * ow + j] = 0
