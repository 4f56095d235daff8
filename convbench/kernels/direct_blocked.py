"""Direct convolution on a channel-blocked layout, register-blocked (Zhang, Franchetti and
Low, ICML 2018; oneDNN's ``jit:avx512_core`` / ``jit:avx2`` direct kernels).

Layouts, ``W`` being the channels of one SIMD vector (the configuration's
``vector_bytes`` of the dtype: 16 float32 on AVX-512, 8 on AVX2):

- input ``(N, G, CB, Hp, Wp, CW)``: each group's channels in blocks of
  ``CW`` (``W``, or all of a group's channels where it has fewer: a
  3-channel first layer is not padded to 16), zero-padded to a whole block,
  the image zero-padded by the layer's padding, so no tap needs a bounds
  check;
- weights ``(G, KB, CB, R, S, CW, W)``: for an output block and an input
  block, each tap is a ``CW x W`` matrix whose rows are vectors of output
  channels;
- output ``(N, G, KB, OH, OWp, W)``, each row padded to whole tiles (and the
  input to match) so every tile has the same, compile-time, width.

The micro-kernel holds ``UR`` output pixels x one block of ``W`` output
channels in ``UR`` vector registers across the whole ``CB x R x S x W``
reduction: each input channel value is broadcast and multiplied into every
pixel's accumulator with the tap's weight vector. No workspace: what it
reads is the blocked input and the blocked weights. Jobs are output rows
``(n, g, kb, oh)``, taken chunk by chunk by every thread
(:mod:`._parallel`).

Taps whose input row is padding are skipped (oneDNN's kernels skip padding
taps too; on a 7x7 layer with padding 1 they are a tenth of the products);
the padding columns are computed, since a tile spans them with the image's
columns (skipping them per pixel, tried, cost more than it saved).
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
from numba import njit

from ._intrinsics import data_ptr, lanes, ptr_add, stack_vectors, vcopy, vfma, vmuladd, vzero
from ._parallel import chunk_done, next_chunk, parallel_for


def _build(UR: int, VB: int, CW: int) -> Callable:  # noqa: N803 - the tile's constants
    @njit(nogil=True, fastmath=True, cache=True)
    def direct_blocked_jobs(work, x, w, out, groups, cb_n, kb_n, oh_n, ow_n, kh, kw, sh, sw, dh, dw,
                            xn, xb, xh, xp, on, ob, oh_s, op, y0, y1):  # pragma: no cover - compiled
        W = lanes(x, VB)
        acc = stack_vectors(x, UR, VB)
        xp0, wp0, op0 = data_ptr(x), data_ptr(w), data_ptr(out)
        tap = CW * W  # one tap's weights: CW input channels x W output channels
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                return
            for job in range(lo, hi):
                oh = job % oh_n
                rest = job // oh_n
                kb = rest % kb_n
                rest //= kb_n
                g = rest % groups
                n = rest // groups
                w_blk = (g * kb_n + kb) * cb_n  # first (kb, cb) weight block
                o_row = n * on + (g * kb_n + kb) * ob + oh * oh_s
                # the taps whose input row holds the image: the others read zeros (padding)
                r_lo = max(0, -((oh * sh - y0) // dh))
                r_hi = min(kh, -((oh * sh - y1) // dh))
                for ow0 in range(0, ow_n, UR):  # ow_n is a multiple of UR (the caller pads the row)
                    for p in range(UR):
                        vzero(ptr_add(acc, p * W), VB)
                    for cb in range(cb_n):
                        for r in range(r_lo, r_hi):
                            ih = oh * sh + r * dh
                            x_row = ptr_add(xp0, n * xn + (g * cb_n + cb) * xb + ih * xh)
                            for s in range(kw):
                                xs = ptr_add(x_row, (ow0 * sw + s * dw) * xp)
                                wt = ptr_add(wp0, (((w_blk + cb) * kh + r) * kw + s) * tap)
                                # constant trip counts: the accumulators stay in registers
                                for c in range(CW):
                                    wv = ptr_add(wt, c * W)
                                    for p in range(UR):
                                        vfma(ptr_add(acc, p * W), xs[p * sw * xp + c], wv, VB)
                    for p in range(UR):
                        vcopy(ptr_add(op0, o_row + (ow0 + p) * op), ptr_add(acc, p * W), VB)
            chunk_done(work, lo, hi)

    return direct_blocked_jobs


@functools.lru_cache(maxsize=None)
def _compiled(ur: int, vbytes: int, cw: int) -> Callable:
    return _build(ur, vbytes, cw)


def row_tiles(ow: int, most: int) -> tuple[int, int]:
    """``(pixels, padded width)``: the register tile for an output row of ``ow`` pixels, at
    most ``most``, balanced so the row padded to whole tiles wastes fewer columns than tiles."""
    tiles = -(-ow // most)
    pixels = -(-ow // tiles)
    return pixels, tiles * pixels


def block_channels(vector_bytes: int, dtype: np.dtype | str) -> int:
    """Channels in one block: one SIMD vector of ``dtype``."""
    return vector_bytes // np.dtype(dtype).itemsize


def _check_rows(where: str, oh: int, ow: int, hp: int, wp: int, kernel: tuple[int, int], stride: tuple[int, int],
                dilation: tuple[int, int], pixels: int, padded: str = "padded ") -> None:
    """Refuse an output of ``oh x ow`` (rows of whole ``pixels``-pixel tiles) whose taps would
    read past an input of ``hp x wp`` (the kernels check no bound)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    if pixels < 1 or ow % pixels:
        raise ValueError(f"{where}: the output row ({ow}) must be a whole number of {pixels}-pixel tiles")
    if (oh - 1) * sh + (kh - 1) * dh >= hp or (ow - 1) * sw + (kw - 1) * dw >= wp:
        raise ValueError(f"{where}: output {oh}x{ow} reads past the {padded}input {hp}x{wp}")


def direct_blocked(x: np.ndarray, w: np.ndarray, out: np.ndarray, kernel: tuple[int, int],
                   stride: tuple[int, int], dilation: tuple[int, int], pixels: int, vector_bytes: int, *,
                   x_nhwc: bool = False, out_nhwc: bool = False, rows: tuple[int, int] | None = None) -> None:
    """``out`` = the direct convolution of blocked ``x`` with blocked ``w`` (see the module
    docstring); output rows are split over ``numba.get_num_threads()`` threads.

    ``x_nhwc``: ``x`` is plain NHWC ``(N, H, W, C)`` instead (which needs no padding, whole
    blocks of ``W`` channels a group and rows that read no column past the image);
    ``out_nhwc``: ``out`` is ``(N, OH, OW, K)`` (whole blocks of ``W`` outputs a group, rows
    of whole tiles). A layer that allows it skips that copy: a block is then ``W``
    neighbouring channels of one pixel. ``rows``: the input rows ``[y0, y1)`` that hold the
    image, the others being zeros (its padding), whose taps are skipped (default: every
    row). Every address the kernel forms is checked first."""
    g, kb, cb, kh, kw, cw, width = w.shape
    if not (x.dtype == w.dtype == out.dtype and width == block_channels(vector_bytes, x.dtype)
            and 1 <= cw <= width and all(a.flags.c_contiguous for a in (x, w, out))):
        raise ValueError(f"direct-blocked: C-contiguous arrays of output blocks of {block_channels(vector_bytes, x.dtype)}"
                         f" {x.dtype} channels, input blocks of at most as many, expected; got weights {w.shape} "
                         f"({x.dtype}, {w.dtype}, {out.dtype})")
    if x_nhwc:
        n, h, wd, c = x.shape
        if c != g * cb * cw:
            raise ValueError(f"direct-blocked: input {x.shape} does not hold {g} groups of {cb} blocks of {cw}")
        xs, hp, wp = (h * wd * c, cw, wd * c, c), h, wd
    else:
        n, g_x, cb_x, hp, wp, cw_x = x.shape
        if (g_x, cb_x, cw_x) != (g, cb, cw):
            raise ValueError(f"direct-blocked: shapes disagree: input {x.shape}, weights {w.shape}, output {out.shape}")
        xs = (g * cb * hp * wp * cw, hp * wp * cw, wp * cw, cw)
    if out_nhwc:
        n_o, oh, ow, k = out.shape
        if k != g * kb * width:
            raise ValueError(f"direct-blocked: output {out.shape} does not hold {g} groups of {kb} blocks of {width}")
        os_ = (oh * ow * k, width, ow * k, k)
    else:
        n_o, g_o, kb_o, oh, ow, _ = out.shape
        if (g_o, kb_o) != (g, kb):
            raise ValueError(f"direct-blocked: shapes disagree: input {x.shape}, weights {w.shape}, output {out.shape}")
        os_ = (g * kb * oh * ow * width, oh * ow * width, ow * width, width)
    if n_o != n or (kh, kw) != tuple(kernel):
        raise ValueError(f"direct-blocked: shapes disagree: input {x.shape}, weights {w.shape}, output {out.shape}")
    _check_rows("direct-blocked", oh, ow, hp, wp, kernel, stride, dilation, pixels, "" if x_nhwc else "padded ")
    y0, y1 = rows if rows is not None else (0, hp)
    if not 0 <= y0 <= y1 <= hp:
        raise ValueError(f"direct-blocked: image rows [{y0}, {y1}) are not rows of the {hp}-row input")
    jobs = _compiled(pixels, vector_bytes, cw)
    flops = 2.0 * n * g * kb * width * oh * ow * cb * kh * kw * cw
    parallel_for(jobs, n * g * kb * oh, x, w, out, g, cb, kb, oh, ow, *kernel, *stride, *dilation, *xs, *os_,
                 y0, y1, flops=flops)


def _build_depthwise(UR: int, VB: int) -> Callable:  # noqa: N803 - the tile's constants
    @njit(nogil=True, fastmath=True, cache=True)
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
