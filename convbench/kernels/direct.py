"""The seven-loop direct convolution (NHWC), the correctness baseline.

Loops ``n, oh, ow, r, s, c, k`` (and ``g``) with nothing clever but the loop
order: weights are repacked to ``(G, R, S, Cg, Kg)`` so the innermost loop
runs over output channels, contiguous in both the weights and the NHWC
output row, which LLVM vectorises.

The ``u8s8`` variant (:func:`direct_u8_nhwc`, :mod:`convbench.quant`) runs
the same loops in int32 on uint8 ``x`` and int8 weights, padding taps
reading the input's zero point, from an accumulator that starts at
``bias[k] - x_zero * sum(w[k])`` (the zero-point correction, per channel,
from :func:`u8_start`), then requantizes each output pixel in float32:
``clamp(rint(float32(acc) * mult[k]) + y_zero, 0, 255)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._parallel import chunk_done, next_chunk, parallel_for


@njit(nogil=True, fastmath=True, cache=True)
def direct_jobs(work, x, w, sh, sw, dh, dw, top, left, out):  # pragma: no cover - compiled
    """Output rows from ``work`` (``n * OH + oh``) of :func:`direct_nhwc`."""
    n_img, h, wd, _ = x.shape
    groups, kh, kw, cg, kg = w.shape
    _, oh, ow, _ = out.shape
    while True:
        lo, hi = next_chunk(work)
        if lo >= hi:
            return
        for job in range(lo, hi):
            n = job // oh
            i = job - n * oh
            for j in range(ow):
                y = out[n, i, j]
                y[:] = 0.0
                for g in range(groups):
                    for r in range(kh):
                        ih = i * sh - top + r * dh
                        if ih < 0 or ih >= h:
                            continue
                        for s in range(kw):
                            iw = j * sw - left + s * dw
                            if iw < 0 or iw >= wd:
                                continue
                            for c in range(cg):
                                xv = x[n, ih, iw, g * cg + c]
                                for k in range(kg):
                                    y[g * kg + k] += xv * w[g, r, s, c, k]
        chunk_done(work, lo, hi)


@njit(nogil=True, cache=True)  # no fastmath: rint, the clamp and inf must be IEEE's
def direct_u8_jobs(work, x, w, x_zero, acc0, mult, y_zero, sh, sw, dh, dw, top, left,
                   out):  # pragma: no cover - compiled
    """Output rows from ``work`` (``n * OH + oh``) of :func:`direct_u8_nhwc`."""
    n_img, h, wd, _ = x.shape
    groups, kh, kw, cg, kg = w.shape
    _, oh, ow, k_all = out.shape
    acc = np.empty(k_all, np.int32)
    pad = np.int32(x_zero)
    yz = np.float32(y_zero)
    while True:
        lo, hi = next_chunk(work)
        if lo >= hi:
            return
        for job in range(lo, hi):
            n = job // oh
            i = job - n * oh
            for j in range(ow):
                acc[:] = acc0
                for g in range(groups):
                    for r in range(kh):
                        ih = i * sh - top + r * dh
                        for s in range(kw):
                            iw = j * sw - left + s * dw
                            inside = 0 <= ih < h and 0 <= iw < wd
                            for c in range(cg):
                                # a padding tap reads the zero point: acc0 took x_zero * w off every tap
                                xv = np.int32(x[n, ih, iw, g * cg + c]) if inside else pad
                                for k in range(kg):
                                    acc[g * kg + k] += xv * np.int32(w[g, r, s, c, k])
                for k in range(k_all):
                    v = np.rint(np.float32(acc[k]) * mult[k]) + yz
                    out[n, i, j, k] = np.uint8(min(max(v, np.float32(0.0)), np.float32(255.0)))
        chunk_done(work, lo, hi)


def u8_start(weight: np.ndarray, bias: np.ndarray, x_zero: int) -> np.ndarray:
    """The int32 accumulator's start per output channel: ``bias[k] - x_zero * sum(w[k])``.

    ``weight`` is int8 OIHW; summed in int64, so only a layer whose
    accumulator overflows int32 anyway (as ONNX's does) wraps here.
    """
    sums = weight.reshape(weight.shape[0], -1).astype(np.int64).sum(axis=1)
    return (bias.astype(np.int64) - np.int64(x_zero) * sums).astype(np.int32)


def direct_u8_nhwc(x: np.ndarray, w: np.ndarray, x_zero: int, acc0: np.ndarray, mult: np.ndarray,
                   y_zero: int, sh: int, sw: int, dh: int, dw: int, top: int, left: int,
                   out: np.ndarray) -> None:
    """``out`` (N, OH, OW, K) uint8 = the ``u8s8`` conv of NHWC uint8 ``x`` with int8
    ``w`` (G, R, S, Cg, Kg), ``acc0`` from :func:`u8_start` and float32 ``mult``
    (``QuantizedWeight.multiplier()``); rows split over numba's threads.

    The shapes are checked here (the kernel indexes by them, unchecked).
    """
    groups, _, _, cg, kg = w.shape
    k_all = out.shape[3]
    if (x.ndim != 4 or out.ndim != 4 or x.shape[3] != groups * cg or k_all != groups * kg
            or acc0.shape != (k_all,) or mult.shape != (k_all,) or x.shape[0] != out.shape[0]
            or x.dtype != np.uint8 or w.dtype != np.int8 or out.dtype != np.uint8
            or acc0.dtype != np.int32 or mult.dtype != np.float32):
        raise ValueError(
            f"direct_u8_nhwc: x {x.dtype}{x.shape}, w {w.dtype}{w.shape}, acc0 {acc0.dtype}{acc0.shape}, "
            f"mult {mult.dtype}{mult.shape}, out {out.dtype}{out.shape} do not fit together")
    parallel_for(direct_u8_jobs, out.shape[0] * out.shape[1], x, w, np.int64(x_zero), acc0, mult,
                 np.int64(y_zero), sh, sw, dh, dw, top, left, out, flops=_flops(out, w))


def pack_direct(weight: np.ndarray, groups: int, dtype: np.dtype | str) -> np.ndarray:
    """OIHW -> ``(G, R, S, Cg, Kg)``, output channels innermost."""
    k, cg, r, s = weight.shape
    kg = k // groups
    return np.ascontiguousarray(
        weight.reshape(groups, kg, cg, r, s).transpose(0, 3, 4, 2, 1), dtype=dtype
    )


#: How much slower per flop these loops run than the GEMM micro-kernel the grain is measured
#: on (:mod:`.grain`): 24-27 GFLOP/s against 90-105 on the Zen 4 VM (1x1 and 5x5 layers),
#: a ratio of two vectorised kernels rather than of one machine. A step's work is its flops
#: times this, so it gets a thread per grain of *time*: counted as plain flops, a 6 MFLOP
#: 1x1 layer (600 us) stayed on one thread where two ran it 1.5x faster.
WORK_PER_FLOP = 4.0


def _flops(out: np.ndarray, w: np.ndarray) -> float:
    """The grain's work of a direct convolution into ``out`` with ``w`` (G, R, S, Cg, Kg):
    2 x R*S*Cg multiply-adds per output value (not the whole group's weights), times
    :data:`WORK_PER_FLOP`."""
    return WORK_PER_FLOP * 2.0 * out.size * w.shape[1] * w.shape[2] * w.shape[3]


def direct_nhwc(x: np.ndarray, w: np.ndarray, sh: int, sw: int, dh: int, dw: int, top: int,
                left: int, out: np.ndarray) -> None:
    """``out`` (N, OH, OW, K) = conv of NHWC ``x`` with ``w`` (G, R, S, Cg, Kg);
    output rows are split over ``numba.get_num_threads()`` threads."""
    parallel_for(direct_jobs, out.shape[0] * out.shape[1], x, w, sh, sw, dh, dw, top, left, out,
                 flops=_flops(out, w))
