"""Depthwise convolution through the indirection buffer (groups == C).

No GEMM: a depthwise layer has one input channel per group, so a GEMM per
group would have a reduction of ``R*S`` and one output column. Instead, per
output pixel and tap, the input pixel row (or the zero vector) is multiplied
elementwise by that tap's weights over all channels (the shape of
XNNPACK's "dwconv" micro-kernels), PX pixels x NR channels at a time with
the accumulators in registers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import _bounds
from ._intrinsics import data_ptr, ptr_add, stack_alloc, vec_width
from ._parallel import parallel_for

#: Output pixels per tile: 4 pixels x 16 float32 channels = 8 ymm accumulators.
PX = 4
ACC_SIZE = PX * 16


@njit(nogil=True, fastmath=True, cache=True)
def depthwise_jobs(lo, hi, x, zero, offs, img_stride, channels, mult, w, out):  # pragma: no cover
    """Tiles ``lo..hi`` of :func:`depthwise`; a tile is ``PX`` consecutive
    output pixels of one image."""
    m_pix, taps = offs.shape
    k_all = channels * mult
    NR = vec_width(x)
    tpi = (m_pix + PX - 1) // PX
    xp = data_ptr(x)
    zp = data_ptr(zero)
    wp = data_ptr(w)
    acc = stack_alloc(x, ACC_SIZE)
    for job in range(lo, hi):
        n = job // tpi
        p0 = (job - n * tpi) * PX
        px = min(PX, m_pix - p0)
        ap = ptr_add(xp, n * img_stride)
        q0 = p0
        q1 = p0 + min(1, px - 1)
        q2 = p0 + min(2, px - 1)
        q3 = p0 + min(3, px - 1)
        k0 = 0
        if mult == 1:
            # PX pixels x NR channels in registers; each tap's weight vector is
            # loaded once for the PX pixels (as B is in the GEMM micro-kernel).
            while k0 + NR <= k_all:
                for k in range(PX * NR):
                    acc[k] = 0.0
                for t in range(taps):
                    o = offs[q0, t]
                    r0 = ptr_add(zp if o < 0 else ptr_add(ap, o), k0)
                    o = offs[q1, t]
                    r1 = ptr_add(zp if o < 0 else ptr_add(ap, o), k0)
                    o = offs[q2, t]
                    r2 = ptr_add(zp if o < 0 else ptr_add(ap, o), k0)
                    o = offs[q3, t]
                    r3 = ptr_add(zp if o < 0 else ptr_add(ap, o), k0)
                    wt = ptr_add(wp, t * k_all + k0)
                    for j in range(NR):
                        wj = wt[j]
                        acc[j] += r0[j] * wj
                        acc[NR + j] += r1[j] * wj
                        acc[2 * NR + j] += r2[j] * wj
                        acc[3 * NR + j] += r3[j] * wj
                for i in range(px):
                    op = ptr_add(data_ptr(out), ((n * m_pix + p0 + i) * k_all) + k0)
                    for j in range(NR):
                        op[j] = acc[i * NR + j]
                k0 += NR
        # channel tail (and channel multipliers > 1): accumulate in the output rows
        for i in range(px):
            p = p0 + i
            op = ptr_add(data_ptr(out), (n * m_pix + p) * k_all)
            for k in range(k0, k_all):
                op[k] = 0.0
            for t in range(taps):
                o = offs[p, t]
                row = zp if o < 0 else ptr_add(ap, o)
                wt = ptr_add(wp, t * k_all)
                for k in range(k0, k_all):
                    op[k] += row[k // mult] * wt[k]


def pack_depthwise(weight: np.ndarray, dtype: np.dtype | str) -> np.ndarray:
    """OIHW ``(C*mult, 1, R, S)`` -> flat ``(R*S, C*mult)``: one contiguous
    channel vector per tap."""
    k, _, r, s = weight.shape
    return np.ascontiguousarray(weight.reshape(k, r * s).T, dtype=dtype).reshape(-1)


def depthwise(x: np.ndarray, zero: np.ndarray, offs: np.ndarray, nimg: int, img_stride: int,
              channels: int, mult: int, w: np.ndarray, out: np.ndarray) -> None:
    """``out[n, p, c*mult + j] = sum_t x_row(n, p, t)[c] * w[t, c*mult + j]``.

    ``x``, ``zero`` (``channels`` zeros), ``w`` (``(T, C*mult)``, from
    :func:`pack_depthwise`) and ``out`` (``(N, M, C*mult)``) are flat;
    ``offs`` is the ``(M, T)`` indirection buffer; output pixels are split
    over ``numba.get_num_threads()`` threads.
    """
    if _bounds.enabled():
        # row (n, p, t) reads x[n*img_stride + offs[p, t] + c], c < channels;
        # tap t's weights are w[t*k_all : (t+1)*k_all]
        m_pix, taps = offs.shape
        _bounds.require_offsets("depthwise", offs, x, nimg, img_stride, channels, zero)
        _bounds.require("depthwise", "the weights", w, 0, taps * channels * mult - 1)
        _bounds.require("depthwise", "the output", out, 0, nimg * m_pix * channels * mult - 1)
    parallel_for(depthwise_jobs, nimg * (-(-offs.shape[0] // PX)), x, zero, offs, img_stride, channels,
                 mult, w, out)
