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
