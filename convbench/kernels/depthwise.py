"""Depthwise convolution through the indirection buffer (groups == C).

No GEMM: a depthwise layer has one input channel per group, so a GEMM per
group would have a reduction of ``R*S`` and one output column. Instead, per
output pixel and tap, the input pixel row (or the zero vector) is multiplied
elementwise by that tap's weights over all channels (the shape of
XNNPACK's "dwconv" micro-kernels), a tile of ``dw_pixels`` pixels x
``dw_vectors`` SIMD vectors of channels at a time (from the machine's
:class:`~convbench.kernels.configs.KernelConfig`) with the accumulators in
registers.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
from numba import njit

from ._intrinsics import (data_ptr, lanes, ptr_add, stack_pointers, stack_vectors, vcopy,
                          vmuladd, vzero)
from . import _bounds
from ._cache_guard import named_for
from ._parallel import chunk_done, next_chunk, parallel_for
from .aligned import aligned_empty
from .configs import KernelConfig, active_config


def _build(px_: int, nvec_: int, vbytes_: int) -> Callable:
    """The jitted tile function for ``px_`` pixels x ``nvec_`` vectors of ``vbytes_``."""
    PX = px_
    NVEC = nvec_
    VB = vbytes_
    NACC = PX * NVEC

    @njit(nogil=True, fastmath=True, cache=True)
    @named_for(PX, NVEC, VB)
    def depthwise_jobs(work, x, zero, offs, img_stride, channels, mult, w, out):  # pragma: no cover
        """Tiles from ``work`` of :func:`depthwise`; a tile is ``PX`` consecutive
        output pixels of one image."""
        m_pix, taps = offs.shape
        k_all = channels * mult
        W = lanes(x, VB)
        NR = NVEC * W
        tpi = (m_pix + PX - 1) // PX
        xp = data_ptr(x)
        zp = data_ptr(zero)
        wp = data_ptr(w)
        outp = data_ptr(out)
        acc = stack_vectors(x, NACC, VB)
        rows = stack_pointers(x, PX)
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                return
            for job in range(lo, hi):
                n = job // tpi
                p0 = (job - n * tpi) * PX
                px = min(PX, m_pix - p0)
                ap = ptr_add(xp, n * img_stride)
                k0 = 0
                if mult == 1:
                    # PX pixels x NR channels in registers; each tap's weight vectors
                    # are loaded once for the PX pixels (as B is in the GEMM kernel).
                    # Pixels past px repeat the last one: same loads, not stored.
                    while k0 + NR <= k_all:
                        for v in range(NACC):
                            vzero(ptr_add(acc, v * W), VB)
                        for t in range(taps):
                            for i in range(PX):
                                o = offs[p0 + min(i, px - 1), t]
                                rows[i] = ptr_add(zp if o < 0 else ptr_add(ap, o), k0)
                            wt = ptr_add(wp, t * k_all + k0)
                            for i in range(PX):
                                for v in range(NVEC):
                                    vmuladd(ptr_add(acc, (i * NVEC + v) * W), ptr_add(rows[i], v * W),
                                            ptr_add(wt, v * W), VB)
                        for i in range(px):
                            op = ptr_add(outp, (n * m_pix + p0 + i) * k_all + k0)
                            for v in range(NVEC):
                                vcopy(ptr_add(op, v * W), ptr_add(acc, (i * NVEC + v) * W), VB)
                        k0 += NR
                # channel tail (and channel multipliers > 1): accumulate in the output rows
                for i in range(px):
                    p = p0 + i
                    op = ptr_add(outp, (n * m_pix + p) * k_all)
                    for k in range(k0, k_all):
                        op[k] = 0.0
                    for t in range(taps):
                        o = offs[p, t]
                        row = zp if o < 0 else ptr_add(ap, o)
                        wt = ptr_add(wp, t * k_all)
                        for k in range(k0, k_all):
                            op[k] += row[k // mult] * wt[k]
            chunk_done(work, lo, hi)

    return depthwise_jobs


@functools.lru_cache(maxsize=None)
def _compiled(px: int, nvec: int, vbytes: int) -> Callable:
    return _build(px, nvec, vbytes)


def jobs_for(config: KernelConfig) -> Callable:
    """The jitted depthwise tile function of ``config``."""
    return _compiled(config.dw_pixels, config.dw_vectors, config.vector_bytes)


def pack_depthwise(weight: np.ndarray, dtype: np.dtype | str) -> np.ndarray:
    """OIHW ``(C*mult, 1, R, S)`` -> flat ``(R*S, C*mult)``: one contiguous
    channel vector per tap."""
    k, _, r, s = weight.shape
    out = aligned_empty((r * s, k), dtype)
    out[...] = weight.reshape(k, r * s).T
    return out.reshape(-1)


def depthwise(x: np.ndarray, zero: np.ndarray, offs: np.ndarray, nimg: int, img_stride: int,
              channels: int, mult: int, w: np.ndarray, out: np.ndarray,
              config: KernelConfig | None = None) -> None:
    """``out[n, p, c*mult + j] = sum_t x_row(n, p, t)[c] * w[t, c*mult + j]``.

    ``x``, ``zero`` (``channels`` zeros), ``w`` (``(T, C*mult)``, from
    :func:`pack_depthwise`) and ``out`` (``(N, M, C*mult)``) are flat;
    ``offs`` is the ``(M, T)`` indirection buffer; output pixels are split
    over ``numba.get_num_threads()`` threads, ``config.dw_pixels`` at a time
    (default: the active configuration). The caller guarantees the sizes:
    the kernel does not check them.
    """
    config = config or active_config()
    if _bounds.enabled():
        # row (n, p, t) reads x[n*img_stride + offs[p, t] + c], c < channels;
        # tap t's weights are w[t*k_all : (t+1)*k_all]
        m_pix, taps = offs.shape
        _bounds.require_offsets("depthwise", offs, x, nimg, img_stride, channels, zero)
        _bounds.require("depthwise", "the weights", w, 0, taps * channels * mult - 1)
        _bounds.require("depthwise", "the output", out, 0, nimg * m_pix * channels * mult - 1)
    parallel_for(jobs_for(config), nimg * (-(-offs.shape[0] // config.dw_pixels)), x, zero, offs,
                 img_stride, channels, mult, w, out, nbytes=x.nbytes + out.nbytes)


#: One band of the im2col matrix that ``im2col-numba`` feeds this kernel on a depthwise
#: layer: 128 KiB, so the band stays in L2 on every target (512 KiB on Zen 3, 1 MiB on
#: Zen 4, 1-2 MiB on the Xeons) between being written and being read, beside the input
#: rows and output it serves. Measured on the Zen 4 VM (one thread, MobileNet's 112x112x32
#: depthwise layer): 474 us with 16-128 KiB bands, 559 us with 512 KiB, 673 us with 2 MiB.
BAND_BYTES = 128 << 10


@functools.lru_cache(maxsize=None)
def _banded(dw_jobs: Callable) -> Callable:
    """The jitted band function around the tile function ``dw_jobs``."""
    from .im2row import tap_major_band_jobs

    @njit(nogil=True, cache=True)
    @named_for(dw_jobs.py_func.__qualname__)
    def banded_jobs(work, x, zero, offs, offs_last, rows, cols, px, kh, kw, sh, sw, dh, dw, top, left,
                    mult, w, out):  # pragma: no cover - compiled
        """Bands ``(n, i, j)`` from ``work``: copy the band's tap-major matrix, then run the
        depthwise tile function on it, one thread a band. A band is ``rows`` whole output
        rows, or ``cols`` columns of one row (``rows`` 1): either way its output pixels are
        consecutive."""
        n_img, _, _, c = x.shape
        oh_n, ow_n = out.shape[1], out.shape[2]
        nrow = (oh_n + rows - 1) // rows
        ncol = (ow_n + cols - 1) // cols
        k = c * mult
        col = np.empty((kh * kw, rows, cols, c), x.dtype)
        inner = np.zeros(4, np.int64)
        flat = out.reshape(-1)
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                return
            for job in range(lo, hi):
                n, rest = job // (nrow * ncol), job % (nrow * ncol)
                i0, jb = (rest // ncol) * rows, (rest % ncol) * cols
                r, cw = min(rows, oh_n - i0), min(cols, ow_n - jb)
                band = col.reshape(-1)[: kh * kw * r * cw * c].reshape((kh * kw, r, cw, c))
                tap_major_band_jobs(x[n], kh, kw, sh, sw, dh, dw, top, left, i0, jb, band, x.dtype.type(0))
                jobs = (r * cw + px - 1) // px  # the tile function's jobs; one chunk: all on this thread
                inner[0], inner[1], inner[2], inner[3] = 0, jobs, jobs, 0
                o0 = ((n * oh_n + i0) * ow_n + jb) * k
                dw_jobs(inner, band.reshape(-1), zero, offs if r * cw == rows * cols else offs_last, r * cw * c,
                        c, mult, w, flat[o0: o0 + r * cw * k])
            chunk_done(work, lo, hi)

    return banded_jobs


def band_shape(oh: int, ow: int, channels: int, taps: int, itemsize: int, px: int) -> tuple[int, int]:
    """``(rows, cols)`` of one band of the tap-major matrix, about :data:`BAND_BYTES`: whole output
    rows where one fits, else a row cut into even parts of whole tiles of ``px`` pixels (a short
    part costs a whole tile)."""
    pixel = max(1, taps * channels * itemsize)
    if BAND_BYTES >= ow * pixel:
        return min(oh, BAND_BYTES // (ow * pixel)), ow
    cols = -(-ow // -(-ow * pixel // BAND_BYTES))
    return 1, min(ow, -(-cols // px) * px)


def band_offsets(pixels: int, channels: int, taps: int) -> np.ndarray:
    """The ``(pixels, T)`` offsets of a band ``(T, pixels, C)``: pixel ``p``'s tap ``t``."""
    return (np.arange(taps, dtype=np.int64)[None, :] * (pixels * channels)
            + np.arange(pixels, dtype=np.int64)[:, None] * channels)


def im2col_depthwise(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                     top: int, left: int, w: np.ndarray, out: np.ndarray,
                     config: KernelConfig | None = None, tiles: Callable | None = None) -> None:
    """A depthwise layer as im2col + this module's kernel, in bands: for each band of one image
    (:func:`band_shape`: output rows, or a part of one row), the tap-major im2col matrix of the band
    (:func:`~convbench.kernels.im2row.tap_major_band_jobs`) is written, then read by the
    same tile function :func:`depthwise` runs for ``indirect``, while it is still in cache.

    ``x`` NHWC ``(N, H, W, C)``, ``w`` from :func:`pack_depthwise`, ``out`` NHWC
    ``(N, OH, OW, C*mult)``; bands are split over the case's threads. ``tiles`` replaces the
    tile function (``benchmarks/kernels.py`` passes one that does nothing, to time the copy
    alone)."""
    config = config or active_config()
    n, _, _, c = x.shape
    n_o, oh, ow, k = out.shape
    taps = kernel[0] * kernel[1]
    if (n_o != n or k % c or w.shape != (taps * k,) or x.dtype != out.dtype or w.dtype != x.dtype
            or not (x.flags.c_contiguous and out.flags.c_contiguous)):
        raise ValueError(f"im2col_depthwise: input {x.shape} {x.dtype}, weights {w.shape} {w.dtype} and output "
                         f"{out.shape} {out.dtype} do not fit a {kernel[0]}x{kernel[1]} depthwise layer")
    rows, cols = band_shape(oh, ow, c, taps, x.itemsize, config.dw_pixels)
    last = (oh % rows or rows) * ow if cols == ow else ow % cols or cols  # the last band's pixels
    offs, offs_last = band_offsets(rows * cols, c, taps), band_offsets(last, c, taps)
    banded = _banded(tiles or _compiled(config.dw_pixels, config.dw_vectors, config.vector_bytes))
    nbands = -(-oh // rows) * -(-ow // cols)
    parallel_for(banded, n * nbands, x, np.zeros(c, x.dtype), offs, offs_last, rows, cols, config.dw_pixels, *kernel,
                 *stride, *dilation, top, left, k // c, w, out, flops=2.0 * out.size * taps,
                 nbytes=x.nbytes + out.nbytes)  # memory-bound: bytes, as indirect's kernel
