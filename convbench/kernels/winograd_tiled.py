"""Winograd F(m x m, 3x3) for m = 2, 4 and 6 in numba, NHWC, on the shared GEMM.

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
matrices (``B^T d B``, ``A^T M A``) on explicit SIMD vectors of channels
(the configuration's vector width); the matrices are closure constants that
LLVM folds into the unrolled code (see :func:`_build`). The points are
0, +-1, +-2, +-1/2 (and infinity), the choice of Lavin & Gray and NNPACK that
keeps float32 error growth moderate.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
from numba import njit

from ._cache_guard import named_for
from ._intrinsics import data_ptr, lanes, ptr_add, stack_vectors, vcopy, vfma, vzero
from ._parallel import chunk_done, next_chunk, parallel_for
from .configs import active_config

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

#: F(2x2, 3x3) (Lavin & Gray 2016, points 0, +-1, inf).
BT2 = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G2 = np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]], dtype=np.float64)
AT2 = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)

MATRICES: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {
    2: (BT2, G2, AT2), 4: (BT4, G4, AT4), 6: (BT6, G6, AT6)}


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


@njit(inline="always")
def _rows_by(dst, mat, src, rows, cols, A, W, VB):  # pragma: no cover - inlined
    """``dst[i, j] = sum_k mat[i, k] * src[k, j]`` for ``i < rows, j < cols``; each
    entry a vector of ``W`` channels, rows ``A`` vectors apart. Inlined, so the
    loop bounds and ``mat`` (a closure constant) reach LLVM as constants."""
    for i in range(rows):
        for j in range(cols):
            p = ptr_add(dst, (i * A + j) * W)
            vzero(p, VB)
            for k in range(A):
                vfma(p, mat[i, k], ptr_add(src, (k * A + j) * W), VB)


@njit(inline="always")
def _cols_by(dst, mat, src, rows, cols, A, W, VB):  # pragma: no cover - inlined
    """``dst[i, j] = sum_k src[i, k] * mat[j, k]`` (the product with ``mat``
    transposed from the right), laid out as in :func:`_rows_by`."""
    for i in range(rows):
        for j in range(cols):
            p = ptr_add(dst, (i * A + j) * W)
            vzero(p, VB)
            for k in range(A):
                vfma(p, mat[j, k], ptr_add(src, (i * A + k) * W), VB)


@njit(inline="always")
def _load(dst, src, n, W, VB):  # pragma: no cover - inlined
    """``dst[:W] = src[:n]``, zero-padded (a channel tail shorter than a vector)."""
    if n == W:
        vcopy(dst, src, VB)
    else:
        vzero(dst, VB)
        for e in range(n):
            dst[e] = src[e]


@njit(inline="always")
def _store(dst, src, n, W, VB):  # pragma: no cover - inlined
    """``dst[:n] = src[:n]``."""
    if n == W:
        vcopy(dst, src, VB)
    else:
        for e in range(n):
            dst[e] = src[e]


def _build(m_: int, dtype_: str, vbytes_: int) -> tuple[Callable, Callable]:
    """The jitted transform pair of F(m_ x m_, 3x3) for ``dtype_`` arrays,
    ``vbytes_``-byte vectors of channels at a time.

    The matrices are closure constants of the array's dtype, and every loop
    over them has a constant trip count, so LLVM unrolls the transforms and
    folds the constant coefficients in: multiplies by 0 and 1 disappear
    (about half of B^T's entries are 0), which a loop reading the
    coefficients from an array at run time cannot do. A tile's ``a x a``
    vectors of channels live in two stack buffers; a channel tail shorter
    than a vector goes through the same buffers, zero-padded."""
    M = m_
    A = m_ + 2
    NP = A * A
    VB = vbytes_
    BT = MATRICES[m_][0].astype(dtype_)
    AT = MATRICES[m_][2].astype(dtype_)

    @njit(nogil=True, fastmath=True, cache=True)
    @named_for(M, dtype_, VB)
    def input_jobs(work, x, pad_top, pad_left, tiles_h, tiles_w, v):  # pragma: no cover
        """Tiles from ``work``: ``v[t, i*A + j, :] = (B^T d B)[i, j, :]``."""
        _, h, w, c = x.shape
        W = lanes(v, VB)
        d = stack_vectors(v, NP, VB)
        tmp = stack_vectors(v, NP, VB)
        xp = data_ptr(x)
        vp = data_ptr(v)
        per_img = tiles_h * tiles_w
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                return
            for t in range(lo, hi):
                n = t // per_img
                rem = t - n * per_img
                row0 = (rem // tiles_w) * M - pad_top
                col0 = (rem % tiles_w) * M - pad_left
                for c0 in range(0, c, W):
                    cw = min(W, c - c0)
                    # d: the a x a input tile (zero outside the image)
                    for i in range(A):
                        hh = row0 + i
                        for j in range(A):
                            ww = col0 + j
                            dp = ptr_add(d, (i * A + j) * W)
                            if hh < 0 or hh >= h or ww < 0 or ww >= w:
                                vzero(dp, VB)
                            else:
                                _load(dp, ptr_add(xp, ((n * h + hh) * w + ww) * c + c0), cw, W, VB)
                    _rows_by(tmp, BT, d, A, A, A, W, VB)  # B^T d
                    _cols_by(d, BT, tmp, A, A, A, W, VB)  # (B^T d) B
                    for q in range(NP):
                        _store(ptr_add(vp, (t * NP + q) * c + c0), ptr_add(d, q * W), cw, W, VB)
            chunk_done(work, lo, hi)

    @njit(nogil=True, fastmath=True, cache=True)
    @named_for(M, dtype_, VB)
    def output_jobs(work, mm, tiles_h, tiles_w, y):  # pragma: no cover
        """Tiles from ``work``: ``y[n, M-tile] = A^T M A``, cropped to ``y``."""
        _, oh, ow, k_all = y.shape
        W = lanes(y, VB)
        d = stack_vectors(y, NP, VB)
        tmp = stack_vectors(y, NP, VB)
        mp = data_ptr(mm)
        yp = data_ptr(y)
        per_img = tiles_h * tiles_w
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                return
            for t in range(lo, hi):
                n = t // per_img
                rem = t - n * per_img
                r0 = (rem // tiles_w) * M
                c0 = (rem % tiles_w) * M
                rows = min(M, oh - r0)
                cols = min(M, ow - c0)
                for k0 in range(0, k_all, W):
                    kw = min(W, k_all - k0)
                    for q in range(NP):
                        _load(ptr_add(d, q * W), ptr_add(mp, (t * NP + q) * k_all + k0), kw, W, VB)
                    _rows_by(tmp, AT, d, M, A, A, W, VB)  # A^T M (M x A)
                    _cols_by(d, AT, tmp, M, M, A, W, VB)  # (A^T M) A (M x M)
                    for i in range(rows):
                        for j in range(cols):
                            _store(ptr_add(yp, ((n * oh + r0 + i) * ow + c0 + j) * k_all + k0),
                                   ptr_add(d, (i * A + j) * W), kw, W, VB)
            chunk_done(work, lo, hi)

    return input_jobs, output_jobs


@functools.lru_cache(maxsize=None)
def _compiled(m: int, dtype: str, vbytes: int) -> tuple[Callable, Callable]:
    return _build(m, dtype, vbytes)


def _jobs(m: int, arr: np.ndarray) -> tuple[Callable, Callable]:
    return _compiled(m, arr.dtype.name, active_config().vector_bytes)


def input_transform(m: int, x: np.ndarray, pad_top: int, pad_left: int, tiles_h: int,
                    tiles_w: int, v: np.ndarray) -> None:
    """``v`` ``(N*tiles, a*a, C)`` = B^T d B of each ``a x a`` input tile of NHWC ``x``."""
    if v.shape != (x.shape[0] * tiles_h * tiles_w, (m + 2) ** 2, x.shape[3]):
        raise ValueError(f"V has shape {v.shape} for input {x.shape} and F({m}x{m},3x3)")
    _require_contiguous(x, v)
    a = m + 2  # B^T d, then (B^T d) B: a^3 multiply-adds each, per tile and channel
    parallel_for(_jobs(m, v)[0], v.shape[0], x, pad_top, pad_left, tiles_h, tiles_w, v,
                 flops=4.0 * a ** 3 * v.shape[0] * v.shape[2], nbytes=x.nbytes + v.nbytes)


def output_transform(m: int, mm: np.ndarray, tiles_h: int, tiles_w: int, y: np.ndarray) -> None:
    """``y`` (N, OH, OW, K) from ``mm`` ``(N*tiles, a*a, K)``, cropped."""
    if mm.shape != (y.shape[0] * tiles_h * tiles_w, (m + 2) ** 2, y.shape[3]):
        raise ValueError(f"M has shape {mm.shape} for output {y.shape} and F({m}x{m},3x3)")
    _require_contiguous(mm, y)
    a = m + 2  # A^T M (m x a x a), then (A^T M) A (m x m x a) multiply-adds, per tile and channel
    parallel_for(_jobs(m, y)[1], mm.shape[0], mm, tiles_h, tiles_w, y,
                 flops=2.0 * (m * a * a + m * m * a) * mm.shape[0] * mm.shape[2], nbytes=mm.nbytes + y.nbytes)


def _require_contiguous(src: np.ndarray, dst: np.ndarray) -> None:
    # the kernels address both arrays through raw pointers, as C-contiguous
    # buffers of one dtype
    if src.dtype != dst.dtype or not (src.flags.c_contiguous and dst.flags.c_contiguous):
        def what(a: np.ndarray) -> str:
            return f"{a.dtype} {'C-contiguous' if a.flags.c_contiguous else 'strided'}"
        raise ValueError(f"Winograd transforms need C-contiguous arrays of one dtype, got "
                         f"{what(src)} and {what(dst)}")
