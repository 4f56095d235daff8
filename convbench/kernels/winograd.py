"""Winograd F(2x2, 3x3) transforms (Lavin & Gray, 2016), NHWC, in numba.

Tiles: output 2x2, input 4x4 (stride 2 between tiles). ``input_transform``
reads the unpadded input and treats out-of-range pixels as zero, so no
padded copy of the input is made. Transformed tiles are laid out
``(16, G, T, Cg)`` so the 16 channel GEMMs are one batched matmul.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._parallel import chunk_done, next_chunk, parallel_for

# Lavin & Gray's matrices for F(2x2, 3x3).
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def skewed_planes(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An empty ``(16, *shape)`` array whose 16 planes do not start 4 KiB apart.

    The transforms touch all 16 planes per tile; when a plane's size is a
    multiple of 4 KiB (56x56x64 floats is) every access maps to one cache set
    and the kernels ran 10x slower. A 64-byte skew between planes avoids it;
    each plane stays contiguous, so the batched GEMM still sees BLAS operands.
    """
    size = int(np.prod(shape))
    stride = size + 64 // np.dtype(dtype).itemsize
    buf = np.empty(16 * stride, dtype)
    planes = buf.reshape(16, stride)[:, :size].reshape(16, *shape)
    assert planes.base is not None and np.shares_memory(planes, buf)
    return planes


def weight_transform(weight: np.ndarray, groups: int) -> np.ndarray:
    """U = G g G^T for every (k, c): OIHW (K, Cg, 3, 3) -> (16, G, Cg, Kg)."""
    k, cg = weight.shape[:2]
    kg = k // groups
    u = np.einsum("ir,kcrs,js->ijkc", G, weight.astype(np.float64), G)  # (4, 4, K, Cg)
    u = u.reshape(16, groups, kg, cg).transpose(0, 1, 3, 2)
    return np.ascontiguousarray(u).astype(weight.dtype)


@njit(nogil=True, cache=True, fastmath=True)
def input_transform_jobs(work, x, pad_top, pad_left, tiles_h, tiles_w, out):  # pragma: no cover
    """Tiles from ``work`` of :func:`input_transform`."""
    _, h, w, c = x.shape
    groups = out.shape[1]
    cg = c // groups
    d = np.empty((4, 4, c), x.dtype)  # one scratch tile per job range, not per tile
    while True:
        lo, hi = next_chunk(work)
        if lo >= hi:
            return
        for t in range(lo, hi):
            n = t // (tiles_h * tiles_w)
            rem = t % (tiles_h * tiles_w)
            row0 = (rem // tiles_w) * 2 - pad_top
            col0 = (rem % tiles_w) * 2 - pad_left
            for i in range(4):
                hi_ = row0 + i
                for j in range(4):
                    wj = col0 + j
                    if hi_ < 0 or hi_ >= h or wj < 0 or wj >= w:
                        for ch in range(c):
                            d[i, j, ch] = 0
                    else:
                        for ch in range(c):
                            d[i, j, ch] = x[n, hi_, wj, ch]
            # rows: B^T d (vectorised over channels)
            for j in range(4):
                for ch in range(c):
                    d0 = d[0, j, ch]
                    d1 = d[1, j, ch]
                    d2 = d[2, j, ch]
                    d3 = d[3, j, ch]
                    d[0, j, ch] = d0 - d2
                    d[1, j, ch] = d1 + d2
                    d[2, j, ch] = d2 - d1
                    d[3, j, ch] = d1 - d3
            # columns: (B^T d) B, group by group so the channel loop has no division
            for i in range(4):
                for gi in range(groups):
                    for ci in range(cg):
                        ch = gi * cg + ci
                        e0 = d[i, 0, ch]
                        e1 = d[i, 1, ch]
                        e2 = d[i, 2, ch]
                        e3 = d[i, 3, ch]
                        out[i * 4 + 0, gi, t, ci] = e0 - e2
                        out[i * 4 + 1, gi, t, ci] = e1 + e2
                        out[i * 4 + 2, gi, t, ci] = e2 - e1
                        out[i * 4 + 3, gi, t, ci] = e1 - e3
        chunk_done(work, lo, hi)


def input_transform(x: np.ndarray, pad_top: int, pad_left: int, tiles_h: int, tiles_w: int,
                    out: np.ndarray) -> None:
    """out[16, G, T, Cg] = B^T d B of each 4x4 input tile d (zero outside x), over the threads."""
    parallel_for(input_transform_jobs, out.shape[2], x, pad_top, pad_left, tiles_h, tiles_w, out,
                 nbytes=x.nbytes + out.nbytes)


@njit(nogil=True, cache=True, fastmath=True)
def output_transform_jobs(work, m, tiles_h, tiles_w, y):  # pragma: no cover
    """Tiles from ``work`` of :func:`output_transform`."""
    _, oh, ow, _ = y.shape
    groups = m.shape[1]
    kg = m.shape[3]
    while True:
        lo, hi = next_chunk(work)
        if lo >= hi:
            return
        for t in range(lo, hi):
            n = t // (tiles_h * tiles_w)
            rem = t % (tiles_h * tiles_w)
            r0 = (rem // tiles_w) * 2
            c0 = (rem % tiles_w) * 2
            for gi in range(groups):
                for kk in range(kg):
                    # A^T M: (2, 4)
                    t00 = m[0, gi, t, kk] + m[4, gi, t, kk] + m[8, gi, t, kk]
                    t01 = m[1, gi, t, kk] + m[5, gi, t, kk] + m[9, gi, t, kk]
                    t02 = m[2, gi, t, kk] + m[6, gi, t, kk] + m[10, gi, t, kk]
                    t03 = m[3, gi, t, kk] + m[7, gi, t, kk] + m[11, gi, t, kk]
                    t10 = m[4, gi, t, kk] - m[8, gi, t, kk] - m[12, gi, t, kk]
                    t11 = m[5, gi, t, kk] - m[9, gi, t, kk] - m[13, gi, t, kk]
                    t12 = m[6, gi, t, kk] - m[10, gi, t, kk] - m[14, gi, t, kk]
                    t13 = m[7, gi, t, kk] - m[11, gi, t, kk] - m[15, gi, t, kk]
                    ch = gi * kg + kk
                    y[n, r0, c0, ch] = t00 + t01 + t02
                    if c0 + 1 < ow:
                        y[n, r0, c0 + 1, ch] = t01 - t02 - t03
                    if r0 + 1 < oh:
                        y[n, r0 + 1, c0, ch] = t10 + t11 + t12
                        if c0 + 1 < ow:
                            y[n, r0 + 1, c0 + 1, ch] = t11 - t12 - t13
        chunk_done(work, lo, hi)


def output_transform(m: np.ndarray, tiles_h: int, tiles_w: int, y: np.ndarray) -> None:
    """y[n, 2i:2i+2, 2j:2j+2, k] = A^T M A, cropped to y; ``m`` is (16, G, T, Kg)."""
    parallel_for(output_transform_jobs, m.shape[2], m, tiles_h, tiles_w, y, nbytes=m.nbytes + y.nbytes)
