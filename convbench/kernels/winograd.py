"""Winograd F(2x2, 3x3) transforms (Lavin & Gray, 2016), NHWC, in numba.

Tiles: output 2x2, input 4x4 (stride 2 between tiles). ``input_transform``
reads the unpadded input and treats out-of-range pixels as zero, so no
padded copy of the input is made. Transformed tiles are laid out
``(16, G, T, Cg)`` so the 16 channel GEMMs are one batched matmul.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Lavin & Gray's matrices for F(2x2, 3x3).
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def weight_transform(weight: np.ndarray, groups: int) -> np.ndarray:
    """U = G g G^T for every (k, c): OIHW (K, Cg, 3, 3) -> (16, G, Cg, Kg)."""
    k, cg = weight.shape[:2]
    kg = k // groups
    u = np.einsum("ir,kcrs,js->ijkc", G, weight.astype(np.float64), G)  # (4, 4, K, Cg)
    u = u.reshape(16, groups, kg, cg).transpose(0, 1, 3, 2)
    return np.ascontiguousarray(u).astype(weight.dtype)


@njit(cache=True, parallel=True, fastmath=True)
def input_transform(x, pad_top, pad_left, tiles_h, tiles_w, groups, n_chunks, out):  # pragma: no cover
    """out[16, G, T, Cg] = B^T d B of each 4x4 input tile d (zero outside x).

    Tiles are split in ``n_chunks`` parallel chunks (a few per thread).
    """
    n_img, h, w, c = x.shape
    cg = c // groups
    n_tiles = n_img * tiles_h * tiles_w
    # one scratch tile per chunk of tiles: allocating inside the tile loop is slow
    n_chunks = max(1, min(n_tiles, n_chunks))
    for chunk in prange(n_chunks):
        d = np.empty((4, 4, c), x.dtype)
        for t in range(chunk * n_tiles // n_chunks, (chunk + 1) * n_tiles // n_chunks):
            n = t // (tiles_h * tiles_w)
            rem = t % (tiles_h * tiles_w)
            row0 = (rem // tiles_w) * 2 - pad_top
            col0 = (rem % tiles_w) * 2 - pad_left
            for i in range(4):
                hi = row0 + i
                for j in range(4):
                    wj = col0 + j
                    if hi < 0 or hi >= h or wj < 0 or wj >= w:
                        d[i, j, :] = 0
                    else:
                        d[i, j, :] = x[n, hi, wj, :]
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
            # columns: (B^T d) B
            for i in range(4):
                for ch in range(c):
                    gi = ch // cg
                    ci = ch - gi * cg
                    e0 = d[i, 0, ch]
                    e1 = d[i, 1, ch]
                    e2 = d[i, 2, ch]
                    e3 = d[i, 3, ch]
                    out[i * 4 + 0, gi, t, ci] = e0 - e2
                    out[i * 4 + 1, gi, t, ci] = e1 + e2
                    out[i * 4 + 2, gi, t, ci] = e2 - e1
                    out[i * 4 + 3, gi, t, ci] = e1 - e3


@njit(cache=True, parallel=True, fastmath=True)
def output_transform(m, tiles_h, tiles_w, y):  # pragma: no cover - numba
    """y[n, 2i:2i+2, 2j:2j+2, k] = A^T M A, cropped to y's size.

    ``m`` is (16, G, T, Kg); output channel k = g * Kg + kk.
    """
    n_img, oh, ow, k = y.shape
    groups = m.shape[1]
    kg = m.shape[3]
    n_tiles = n_img * tiles_h * tiles_w
    for t in prange(n_tiles):
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
