"""``direct-blocked``'s kernel for depthwise layers (one input channel a group): the groups in
the vector lanes of the blocked layout of :mod:`.direct_blocked`, a tile of ``UR`` output
pixels of a row, one accumulator vector each."""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
from numba import njit

from ._cache_guard import named_for
from ._intrinsics import data_ptr, lanes, ptr_add, stack_vectors, vcopy, vmuladd, vzero
from ._parallel import chunk_done, next_chunk, parallel_for
from .direct_blocked import _check_rows, block_channels


def _build_depthwise(UR: int, VB: int) -> Callable:  # noqa: N803 - the tile's constants
    @njit(nogil=True, fastmath=True, cache=True)
    @named_for(UR, VB)
    def depthwise_blocked_jobs(work, x, w, out, gb_n, mult, hp, wp, oh_n, ow_n, kh, kw,
                               sh, sw, dh, dw):  # pragma: no cover - compiled
        W = lanes(x, VB)
        acc = stack_vectors(x, UR, VB)
        xp0, wp0, op0 = data_ptr(x), data_ptr(w), data_ptr(out)
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                return
            for job in range(lo, hi):
                oh = job % oh_n
                rest = job // oh_n
                m = rest % mult
                rest //= mult
                gb = rest % gb_n
                n = rest // gb_n
                x_blk = (n * gb_n + gb) * hp  # first row of this image's block of groups
                w_blk = (gb * mult + m) * kh * kw
                o_row = (((n * gb_n + gb) * mult + m) * oh_n + oh) * ow_n * W
                for ow0 in range(0, ow_n, UR):  # ow_n is a multiple of UR (the caller pads the row)
                    for p in range(UR):
                        vzero(ptr_add(acc, p * W), VB)
                    for r in range(kh):
                        x_row = ptr_add(xp0, (x_blk + oh * sh + r * dh) * wp * W)
                        for s in range(kw):
                            wv = ptr_add(wp0, (w_blk + r * kw + s) * W)
                            xs = ptr_add(x_row, (ow0 * sw + s * dw) * W)
                            for p in range(UR):  # each lane is its own group: elementwise, no broadcast
                                vmuladd(ptr_add(acc, p * W), ptr_add(xs, p * sw * W), wv, VB)
                    for p in range(UR):
                        vcopy(ptr_add(op0, o_row + (ow0 + p) * W), ptr_add(acc, p * W), VB)
            chunk_done(work, lo, hi)

    return depthwise_blocked_jobs


@functools.lru_cache(maxsize=None)
def _compiled_depthwise(ur: int, vbytes: int) -> Callable:
    return _build_depthwise(ur, vbytes)


def check_depthwise_blocked(x: np.ndarray, w: np.ndarray, out: np.ndarray, kernel: tuple[int, int],
                            stride: tuple[int, int], dilation: tuple[int, int], pixels: int,
                            vector_bytes: int) -> None:
    """Refuse arrays :func:`depthwise_blocked` would read or write out of bounds."""
    n, gb, hp, wp, lanes_x = x.shape
    gb_w, mult, kh, kw, lanes_w = w.shape
    n_o, gb_o, mult_o, oh, ow, lanes_o = out.shape
    width = block_channels(vector_bytes, x.dtype)
    if not (x.dtype == w.dtype == out.dtype and lanes_x == lanes_w == lanes_o == width):
        raise ValueError(f"direct-blocked depthwise: blocks of {width} {x.dtype} groups expected in every array; "
                         f"got {lanes_x}, {lanes_w}, {lanes_o} ({x.dtype}, {w.dtype}, {out.dtype})")
    if (gb_w, (kh, kw)) != (gb, kernel) or (n_o, gb_o, mult_o) != (n, gb, mult):
        raise ValueError(f"direct-blocked depthwise: shapes disagree: input {x.shape}, weights {w.shape}, "
                         f"output {out.shape}")
    _check_rows("direct-blocked depthwise", oh, ow, hp, wp, kernel, stride, dilation, pixels)
    if not all(a.flags.c_contiguous for a in (x, w, out)):
        raise ValueError("direct-blocked depthwise: input, weights and output must be C-contiguous")


def depthwise_blocked(x: np.ndarray, w: np.ndarray, out: np.ndarray, kernel: tuple[int, int],
                      stride: tuple[int, int], dilation: tuple[int, int], pixels: int, vector_bytes: int) -> None:
    """Depthwise (one input channel a group) direct convolution with the *groups* in the
    vector lanes: input ``(N, GB, Hp, Wp, W)``, weights ``(GB, M, R, S, W)``, output
    ``(N, GB, M, OH, OWp, W)`` (``M`` outputs a group). A tap is one elementwise
    multiply-add of ``W`` groups at once (oneDNN's ``jit_uni_dw_conv`` shape), where the
    dense kernel would pad each one-channel group to ``W`` lanes and use one of them."""
    check_depthwise_blocked(x, w, out, kernel, stride, dilation, pixels, vector_bytes)
    n, gb, hp, wp, _ = x.shape
    mult, oh, ow = w.shape[1], out.shape[3], out.shape[4]
    jobs = _compiled_depthwise(pixels, vector_bytes)
    flops = 2.0 * out.size * kernel[0] * kernel[1]
    parallel_for(jobs, n * gb * mult * oh, x, w, out, gb, mult, hp, wp, oh, ow, *kernel, *stride, *dilation,
                 flops=flops, nbytes=x.nbytes + out.nbytes)  # memory-bound: its bytes count too
