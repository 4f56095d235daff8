"""Winograd F(m x m, 3x3) for m = 4 and 6 in numba, NHWC, on the shared GEMM.

Tiles: output ``m x m``, input ``a x a`` with ``a = m + 2`` (stride ``m``
between tiles). :func:`input_transform` reads the unpadded input (pixels
outside it are zero, no padded copy) and writes ``V[t, i*a + j, ch]``:
tile-major, the ``a*a`` transformed planes of a tile next to each other,
channels innermost. That is exactly the A operand of a grouped convolution
GEMM with ``a*a*G`` groups and one row per tile, so the ``a*a`` channel
GEMMs run on the configured micro-kernel of :mod:`convbench.kernels.gemm`
(``V[t, q] @ U[q]`` for every plane-and-group ``q``) with its tiles,
blocking and dynamic threads, and :func:`output_transform` reads the
product ``M[t, q, k]`` back with the same layout.

Transforms are written once for any ``m`` as two passes of small constant
matrices (``B^T d B``, ``A^T M A``), vectorised over channels; the matrices
are module constants that numba freezes into the code. The points are
0, +-1, +-2, +-1/2 (and infinity), the choice of Lavin & Gray and NNPACK that
keeps float32 error growth moderate.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
from numba import njit

from ._parallel import parallel_for

#: F(4x4, 3x3) (Lavin & Gray 2016, points 0, +-1, +-2, inf).
BT4 = np.array([[4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G4 = np.array([[1 / 4, 0, 0],
               [-1 / 6, -1 / 6, -1 / 6],
               [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6],
               [1 / 24, -1 / 12, 1 / 6],
               [0, 0, 1]], dtype=np.float64)
AT4 = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 0],
                [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], dtype=np.float64)

#: F(6x6, 3x3) (NNPACK's points 0, +-1, +-2, +-1/2, inf).
BT6 = np.array([[1, 0, -21 / 4, 0, 21 / 4, 0, -1, 0],
                [0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0],
                [0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0],
                [0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0],
                [0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0],
                [0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0],
                [0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0],
                [0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1]], dtype=np.float64)
G6 = np.array([[1, 0, 0],
               [-2 / 9, -2 / 9, -2 / 9],
               [-2 / 9, 2 / 9, -2 / 9],
               [1 / 90, 1 / 45, 2 / 45],
               [1 / 90, -1 / 45, 2 / 45],
               [32 / 45, 16 / 45, 8 / 45],
               [32 / 45, -16 / 45, 8 / 45],
               [0, 0, 1]], dtype=np.float64)
AT6 = np.array([[1, 1, 1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 1 / 2, -1 / 2, 0],
                [0, 1, 1, 4, 4, 1 / 4, 1 / 4, 0],
                [0, 1, -1, 8, -8, 1 / 8, -1 / 8, 0],
                [0, 1, 1, 16, 16, 1 / 16, 1 / 16, 0],
                [0, 1, -1, 32, -32, 1 / 32, -1 / 32, 1]], dtype=np.float64)

MATRICES: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {4: (BT4, G4, AT4), 6: (BT6, G6, AT6)}


def weight_transform(weight: np.ndarray, m: int, groups: int) -> np.ndarray:
    """U = G g G^T in float64, as OIHW weights of the plane-grouped GEMM:
    ``(a*a*G*Kg, Cg, 1, 1)``, output channel ``(q*Kg + k)`` for group
    ``q = plane*G + g``."""
    _, gm, _ = MATRICES[m]
    k, cg = weight.shape[:2]
    kg = k // groups
    a = m + 2
    u = np.einsum("ir,kcrs,js->ijkc", gm, weight.astype(np.float64), gm)  # (a, a, K, Cg)
    return u.reshape(a * a * groups * kg, cg, 1, 1)


def _build(m_: int) -> tuple[Callable, Callable]:
    M = m_
    A = m_ + 2
    BT = MATRICES[m_][0].copy()
    AT = MATRICES[m_][2].copy()

    @njit(nogil=True, fastmath=True, cache=True)
    def input_jobs(lo, hi, x, pad_top, pad_left, tiles_h, tiles_w, v):  # pragma: no cover
        """Tiles ``lo..hi``: ``v[t, i*A + j, :] = (B^T d B)[i, j, :]``."""
        _, h, w, c = x.shape
        bt = BT.astype(x.dtype)  # compute in the input's precision
        zero = bt[0, 0] * 0
        d = np.empty((A, A, c), x.dtype)
        tmp = np.empty((A, A, c), x.dtype)
        per_img = tiles_h * tiles_w
        for t in range(lo, hi):
            n = t // per_img
            rem = t - n * per_img
            row0 = (rem // tiles_w) * M - pad_top
            col0 = (rem % tiles_w) * M - pad_left
            for i in range(A):
                hi_ = row0 + i
                for j in range(A):
                    wj = col0 + j
                    if hi_ < 0 or hi_ >= h or wj < 0 or wj >= w:
                        for ch in range(c):
                            d[i, j, ch] = 0
                    else:
                        for ch in range(c):
                            d[i, j, ch] = x[n, hi_, wj, ch]
            for i in range(A):
                for j in range(A):
                    for ch in range(c):
                        s = zero
                        for k in range(A):
                            s += bt[i, k] * d[k, j, ch]
                        tmp[i, j, ch] = s
            for i in range(A):
                for j in range(A):
                    for ch in range(c):
                        s = zero
                        for k in range(A):
                            s += tmp[i, k, ch] * bt[j, k]
                        v[t, i * A + j, ch] = s

    @njit(nogil=True, fastmath=True, cache=True)
    def output_jobs(lo, hi, mm, tiles_h, tiles_w, y):  # pragma: no cover
        """Tiles ``lo..hi``: ``y[n, M-tile] = A^T M A``, cropped to ``y``."""
        _, oh, ow, k_all = y.shape
        at = AT.astype(y.dtype)
        zero = at[0, 0] * 0
        tmp = np.empty((M, A, k_all), y.dtype)
        per_img = tiles_h * tiles_w
        for t in range(lo, hi):
            n = t // per_img
            rem = t - n * per_img
            r0 = (rem // tiles_w) * M
            c0 = (rem % tiles_w) * M
            for i in range(M):
                for j in range(A):
                    for ch in range(k_all):
                        s = zero
                        for k in range(A):
                            s += at[i, k] * mm[t, k * A + j, ch]
                        tmp[i, j, ch] = s
            for i in range(min(M, oh - r0)):
                for j in range(min(M, ow - c0)):
                    for ch in range(k_all):
                        s = zero
                        for k in range(A):
                            s += tmp[i, k, ch] * at[j, k]
                        y[n, r0 + i, c0 + j, ch] = s

    return input_jobs, output_jobs


@functools.lru_cache(maxsize=None)
def _compiled(m: int) -> tuple[Callable, Callable]:
    return _build(m)


def input_transform(m: int, x: np.ndarray, pad_top: int, pad_left: int, tiles_h: int,
                    tiles_w: int, v: np.ndarray) -> None:
    """``v`` ``(N*tiles, a*a, C)`` = B^T d B of each ``a x a`` input tile of NHWC ``x``."""
    if v.shape != (x.shape[0] * tiles_h * tiles_w, (m + 2) ** 2, x.shape[3]):
        raise ValueError(f"V has shape {v.shape} for input {x.shape} and F({m}x{m},3x3)")
    parallel_for(_compiled(m)[0], v.shape[0], x, pad_top, pad_left, tiles_h, tiles_w, v)


def output_transform(m: int, mm: np.ndarray, tiles_h: int, tiles_w: int, y: np.ndarray) -> None:
    """``y`` (N, OH, OW, K) from ``mm`` ``(N*tiles, a*a, K)``, cropped."""
    if mm.shape != (y.shape[0] * tiles_h * tiles_w, (m + 2) ** 2, y.shape[3]):
        raise ValueError(f"M has shape {mm.shape} for output {y.shape} and F({m}x{m},3x3)")
    parallel_for(_compiled(m)[1], mm.shape[0], mm, tiles_h, tiles_w, y)
