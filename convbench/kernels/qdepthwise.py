"""Depthwise u8s8 convolution through the indirection buffer (groups == C), 8-bit.

The 8-bit twin of :mod:`.depthwise` (XNNPACK's ``qu8-dwconv`` shape): per
output pixel and tap, the input pixel's u8 channels (or the zero-point
vector, for a padding tap) are widened and multiplied lane by lane with that
tap's s8 weights into int32 accumulators
(:func:`~convbench.kernels._qintrinsics.vmuladd_u8s8`), a tile of
``dw_pixels`` pixels x ``dw_vectors`` int32 vectors of channels at a time
(from the machine's :class:`~convbench.kernels.quant_configs.QuantKernelConfig`),
in registers, then requantized to u8 (:mod:`.requant`); channels past the
last whole tile one vector at a time. Channels past the last whole vector,
and layers with a channel multiplier, take a scalar path into a per-thread
int32 row.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
from numba import njit

from ._intrinsics import data_ptr, ptr_add, stack_pointers, stack_vectors, vzero
from ._qintrinsics import vmuladd_u8s8, vrequant
from . import _bounds
from ._cache_guard import named_for
from ._parallel import chunk_done, next_chunk, parallel_for
from .aligned import aligned_empty
from .configs import QuantKernelConfig, active_quant_config
from .requant import requant_one


def _build(px_: int, nvec_: int, vbytes_: int) -> Callable:
    """The jitted tile function for ``px_`` pixels x ``nvec_`` int32 vectors of ``vbytes_``."""
    PX = px_
    NVEC = nvec_
    VB = vbytes_
    W = vbytes_ // 4
    NR = nvec_ * W
    NACC = px_ * nvec_

    @njit(nogil=True, cache=True)  # no fastmath: the requantization is IEEE's
    @named_for(PX, NVEC, VB)
    def qdepthwise_jobs(work, x, zero, offs, img_stride, channels, mult_k, w, corr, mult, y_zero,
                        out):  # pragma: no cover - compiled
        """Tiles from ``work`` of :func:`qdepthwise`: ``PX`` consecutive output pixels of one image."""
        m_pix, taps = offs.shape
        k_all = channels * mult_k
        tpi = (m_pix + PX - 1) // PX
        yz = np.float32(y_zero)
        xp = data_ptr(x)
        zp = data_ptr(zero)
        wp = data_ptr(w)
        cp = data_ptr(corr)
        mp = data_ptr(mult)
        outp = data_ptr(out)
        acc = stack_vectors(corr, NACC, VB)
        rows = stack_pointers(x, PX)
        row32 = np.empty(k_all, np.int32)  # the scalar path's accumulators, one per thread
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
                if mult_k == 1:
                    # pixels past px repeat the last one: same loads, not stored
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
                                    vmuladd_u8s8(ptr_add(acc, (i * NVEC + v) * W), ptr_add(rows[i], v * W),
                                                 ptr_add(wt, v * W), VB)
                        if px == PX:  # a constant trip count: requantized from registers
                            for i in range(PX):
                                op = ptr_add(outp, (n * m_pix + p0 + i) * k_all + k0)
                                for v in range(NVEC):
                                    vrequant(ptr_add(op, v * W), ptr_add(acc, (i * NVEC + v) * W),
                                             ptr_add(cp, k0 + v * W), ptr_add(mp, k0 + v * W), yz, VB)
                        else:
                            for i in range(px):
                                op = ptr_add(outp, (n * m_pix + p0 + i) * k_all + k0)
                                for v in range(NVEC):
                                    vrequant(ptr_add(op, v * W), ptr_add(acc, (i * NVEC + v) * W),
                                             ptr_add(cp, k0 + v * W), ptr_add(mp, k0 + v * W), yz, VB)
                        k0 += NR
                    # then single vectors (the channels left past the last NR-wide block)
                    while k0 + W <= k_all:
                        for i in range(PX):
                            vzero(ptr_add(acc, i * W), VB)
                        for t in range(taps):
                            wt = ptr_add(wp, t * k_all + k0)
                            for i in range(PX):
                                o = offs[p0 + min(i, px - 1), t]
                                vmuladd_u8s8(ptr_add(acc, i * W), ptr_add(zp if o < 0 else ptr_add(ap, o), k0), wt, VB)
                        for i in range(px):
                            vrequant(ptr_add(outp, (n * m_pix + p0 + i) * k_all + k0), ptr_add(acc, i * W),
                                     ptr_add(cp, k0), ptr_add(mp, k0), yz, VB)
                        k0 += W
                # channel tail (and channel multipliers > 1): scalar, into row32
                for i in range(px):
                    p = p0 + i
                    for k in range(k0, k_all):
                        row32[k] = corr[k]
                    for t in range(taps):
                        o = offs[p, t]
                        row = zp if o < 0 else ptr_add(ap, o)
                        wt = ptr_add(wp, t * k_all)
                        for k in range(k0, k_all):
                            row32[k] += np.int32(row[k // mult_k]) * np.int32(wt[k])
                    op = ptr_add(outp, (n * m_pix + p) * k_all)
                    for k in range(k0, k_all):
                        op[k] = requant_one(row32[k], mult[k], yz)
            chunk_done(work, lo, hi)

    return qdepthwise_jobs


@functools.lru_cache(maxsize=None)
def _compiled(px: int, nvec: int, vbytes: int) -> Callable:
    return _build(px, nvec, vbytes)


def jobs_for(config: QuantKernelConfig) -> Callable:
    """The jitted u8s8 depthwise tile function of ``config``."""
    return _compiled(config.dw_pixels, config.dw_vectors, config.vector_bytes)


def pack_qdepthwise(weight: np.ndarray) -> np.ndarray:
    """s8 OIHW ``(C*mult, 1, R, S)`` -> flat s8 ``(R*S, C*mult)``: one channel vector per tap."""
    k, _, r, s = weight.shape
    out = aligned_empty((r * s, k), np.int8)
    out[...] = weight.reshape(k, r * s).T
    return out.reshape(-1)


def qdepthwise(x: np.ndarray, zero: np.ndarray, offs: np.ndarray, nimg: int, img_stride: int,
               channels: int, mult_k: int, w: np.ndarray, corr: np.ndarray, mult: np.ndarray,
               y_zero: int, out: np.ndarray, config: QuantKernelConfig | None = None) -> None:
    """``out[n, p, c*mult_k + j]`` = the requantized ``corr[k] + sum_t x_row(n, p, t)[c] * w[t, k]``,
    ``k = c*mult_k + j``.

    ``x`` (u8), ``zero`` (``channels`` bytes of ``x_zero``), ``w`` (s8
    ``(T, C*mult_k)`` from :func:`pack_qdepthwise`) and ``out`` (u8 ``(N, M,
    C*mult_k)``) are flat; ``offs`` the ``(M, T)`` indirection buffer;
    ``corr`` int32 and ``mult`` float32 per output channel (:mod:`.requant`).
    Output pixels are split over ``numba.get_num_threads()`` threads. The
    caller guarantees the sizes: the kernel does not check them.
    """
    config = config or active_quant_config()
    m_pix, taps = offs.shape
    k_all = channels * mult_k
    if _bounds.enabled():
        _bounds.require_offsets("qdepthwise", offs, x, nimg, img_stride, channels, zero)
        _bounds.require("qdepthwise", "the weights", w, 0, taps * k_all - 1)
        _bounds.require("qdepthwise", "the corrections", corr, 0, k_all - 1)
        _bounds.require("qdepthwise", "the multipliers", mult, 0, k_all - 1)
        _bounds.require("qdepthwise", "the output", out, 0, nimg * m_pix * k_all - 1)
    parallel_for(jobs_for(config), nimg * (-(-m_pix // config.dw_pixels)), x, zero, offs, img_stride,
                 channels, mult_k, w, corr, mult, int(y_zero), out)
