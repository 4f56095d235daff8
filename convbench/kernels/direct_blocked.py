"""Direct convolution on a channel-blocked layout, register-blocked (Zhang, Franchetti and
Low, ICML 2018; oneDNN's ``jit:avx512_core`` / ``jit:avx2`` direct kernels).

Layouts, ``W`` being the channels of one SIMD vector (the configuration's
``vector_bytes`` of the dtype: 16 float32 on AVX-512, 8 on AVX2):

- input ``(N, G, CB, Hp, Wp, CW)``: each group's channels in blocks of
  ``CW`` (``W``, or all of a group's channels where it has fewer: a
  3-channel first layer is not padded to 16), zero-padded to a whole block,
  the image zero-padded by the layer's padding, so no tap needs a bounds
  check;
- weights ``(G, KT, CB, R, S, CW, B * W)``: the ``KB`` output blocks of a group
  in ``KT`` tiles of ``B``; for a tile and an input block, each tap is a
  ``CW x BW`` matrix whose rows are the ``B`` vectors of output channels side
  by side;
- output ``(N, G, KB, OH, OW, W)``, of any height and width: its pixels go in
  tiles of a compile-time width, ``UR`` and (in a last band of fewer rows) at
  most one each of 16, 8, 4, 2 and 1 pixels at the end of a row.

The micro-kernel holds ``UR`` output pixels x ``B`` blocks of ``W`` output
channels in ``UR * B`` vector registers across the whole ``CB x R x S x W``
reduction: each input channel value is broadcast once and multiplied into
its pixel's ``B`` accumulators with the tap's ``B`` weight vectors. More
blocks a tile means fewer broadcasts a multiply-add (``1 / B``): where a
broadcast costs an instruction of its own (AVX2, whose FMAs take no
broadcast operand as AVX-512's do) that is what lets the multiply-adds
run back to back (oneDNN's ``jit:avx2`` kernel holds 3 pixels x 4 blocks).
No workspace: what it reads is the blocked input and the blocked weights.

Output rows go in bands of ``UR`` rows. In a band, each row's pixels that read no
padding column are whole tiles along the row; the others (the edge pixels, whose
taps reach a padding column, and what is left of the row) are whole tiles down
the band's columns, so a 7-pixel row is no 3 + 3 + 1 pixels, where the one-pixel
tile, four multiply-adds a weight load, waits on weights that do not fit in L2
(512x7x7, 3x4 tile: 7.0 -> 6.4 ms on the Zen 1 VM). Taps whose input row or
column is padding are skipped, as oneDNN's kernels skip them (on a 7x7 layer
with padding 1 they are a fifth of the products): columns exactly, rows where
they are padding for every pixel of the tile. Jobs are bands of output rows of a
tile of blocks ``(n, g, kt, band)``, taken chunk by chunk by every thread
(:mod:`._parallel`). Where a tile of blocks has more weights than stay in L2
(:data:`SLICE_BYTES`), a band goes over the input blocks in slices, each slice's
tiles adding onto what the earlier slices left in the output (oneDNN's blocking of
the input channels).
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
from numba import njit

from ._cache_guard import named_for
from ._intrinsics import data_ptr, lanes, ptr_add, stack_vectors, vcopy, vfma, vzero
from ._parallel import chunk_done, next_chunk, parallel_for


@functools.lru_cache(maxsize=None)
def _build_tile(U: int, KT: int, VB: int, CW: int) -> Callable:  # noqa: N803 - the tile's constants
    """The register tile: ``U`` pixels x ``KT`` output blocks over the whole reduction, from
    the input at ``x0`` (its first pixel, first block, first tap's row) and the tile's weights
    at ``w0``, into the output at ``o0`` (its first pixel and block). A function of its own,
    not inlined, shared by every kernel that calls it: each tile is compiled once (an inlined
    one was compiled at every call, and its cold compiles took 1.5-1.7x as long; the call costs
    nothing measurable beside a tile's reduction). ``CW`` 0: blocks of as many channels as
    ``geo`` says at run time (one kernel for every such count: each count compiled its own
    5-6 tiles, 4-9 s of a test run's compile each)."""
    NA = U * KT  # noqa: N806 - the accumulators: a compile-time constant, as stack_vectors needs

    @njit(nogil=True, fastmath=True, cache=True, inline="never")
    @named_for(U, KT, VB, CW)
    def tile(x, x0, w0, o0, r_lo, r_hi, s_lo, s_hi, geo):  # pragma: no cover - compiled
        cb_n, kh, kw, dh, dw, xb, xh, xp, ob, px_x, px_o, cw_run, add = geo  # px_: from one pixel to the next
        W = lanes(x, VB)  # x: the input array, whose dtype the tile's vectors take
        cw = CW if CW > 0 else cw_run
        acc = stack_vectors(x, NA, VB)
        tap = cw * KT * W  # one tap's weights: cw input channels x KT blocks of W output channels
        for p in range(U):
            for k in range(KT):
                if add:  # a later slice of the input blocks: onto what the earlier ones left
                    vcopy(ptr_add(acc, (p * KT + k) * W), ptr_add(o0, k * ob + p * px_o), VB)
                else:
                    vzero(ptr_add(acc, (p * KT + k) * W), VB)
        for cb in range(cb_n):
            for r in range(r_lo, r_hi):
                x_row = ptr_add(x0, cb * xb + r * dh * xh)
                for s in range(s_lo, s_hi):
                    xs = ptr_add(x_row, s * dw * xp)
                    wt = ptr_add(w0, ((cb * kh + r) * kw + s) * tap)
                    # constant trip counts: the accumulators stay in registers, beside the tile's
                    # shorter side (U broadcasts or KT weight vectors) while the other streams
                    # past: a 3x4 tile holding its 4 weight vectors spilled on AVX2's 16 registers
                    for c in range(cw):
                        wv = ptr_add(wt, c * KT * W)
                        if U <= KT:
                            for k in range(KT):
                                for p in range(U):
                                    vfma(ptr_add(acc, (p * KT + k) * W), xs[p * px_x + c], ptr_add(wv, k * W), VB)
                        else:
                            for p in range(U):
                                xv = xs[p * px_x + c]
                                for k in range(KT):
                                    vfma(ptr_add(acc, (p * KT + k) * W), xv, ptr_add(wv, k * W), VB)
        for p in range(U):
            for k in range(KT):
                vcopy(ptr_add(o0, k * ob + p * px_o), ptr_add(acc, (p * KT + k) * W), VB)

    return tile


@njit(nogil=True, cache=True, inline="always")
def _inside(a, b, stride, dil, k, lo, hi):  # pragma: no cover - compiled
    """The taps ``[t_lo, t_hi)`` of ``k`` along one axis that read inside ``[lo, hi)`` (the
    image, not its padding) for at least one of the outputs ``a..b``."""
    return max(0, -((b * stride - lo) // dil)), min(k, -((a * stride - hi) // dil))


@njit(nogil=True, cache=True)
def _no_tile(x, x0, w0, o0, r_lo, r_hi, s_lo, s_hi, geo):  # pragma: no cover - compiled
    """A tail size the tile never needs (not shorter than it): nothing to compile."""


def _build(UR: int, KT: int, VB: int, CW: int) -> Callable:  # noqa: N803 - the tile's constants
    full = _build_tile(UR, KT, VB, CW)
    one = _build_tile(1, KT, VB, CW) if UR > 1 else full
    # the rest of a row in a band of fewer than UR rows (fewer than UR pixels, UR <= 31) in at
    # most one tile each of 16, 8, 4 and 2 pixels and single pixels: one compiled kernel for
    # every row width
    t16, t8, t4, t2 = (_build_tile(u, KT, VB, CW) if u < UR else _no_tile for u in (16, 8, 4, 2))

    @njit(nogil=True, fastmath=True, cache=True)
    @named_for(UR, KT, VB, CW)
    def direct_blocked_jobs(work, x, w, out, groups, cw, cb_n, kt_n, oh_n, ow_n, kh, kw, sh, sw, dh, dw,
                            xn, xb, xh, xp, on, ob, oh_s, op, y0, y1, x0, x1, n_left,
                            n_right, cb_step):  # pragma: no cover - compiled
        xp0, wp0, op0 = data_ptr(x), data_ptr(w), data_ptr(out)
        tap = cw * KT * lanes(x, VB)
        s0 = kw * 0  # a tile's first tap column, typed int64: a literal 0 compiled every tile twice
        bands = -(-oh_n // UR)
        mid_end = ow_n - n_right  # n_left edge pixels, the tiles, n_right edge pixels
        full_end = n_left + (mid_end - n_left) // UR * UR
        rest_px = mid_end - full_end
        columns = n_left + rest_px + n_right  # a row's pixels outside its whole tiles
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                return
            for job in range(lo, hi):
                band = job % bands
                rest = job // bands
                kt = rest % kt_n
                rest //= kt_n
                g = rest % groups
                n = rest // groups
                o_img = ptr_add(op0, n * on + (g * kt_n + kt) * KT * ob)
                oh0 = band * UR
                rows = min(UR, oh_n - oh0)
                # the input blocks in slices whose weights stay in cache across the band's tiles
                for c0 in range(0, cb_n, cb_step):
                    w0 = ptr_add(wp0, ((g * kt_n + kt) * cb_n + c0) * kh * kw * tap)
                    x_img = ptr_add(xp0, n * xn + (g * cb_n + c0) * xb)
                    add = min(c0, 1)
                    ncb = min(cb_step, cb_n - c0)
                    along = (ncb, kh, kw, dh, dw, xb, xh, xp, ob, sw * xp, op, cw, add)  # a tile's pixels along a row
                    down = (ncb, kh, kw, dh, dw, xb, xh, xp, ob, sh * xh, oh_s, cw, add)  # down a column
                    for oh in range(oh0, oh0 + rows):
                        o_row, x_row = ptr_add(o_img, oh * oh_s), ptr_add(x_img, oh * sh * xh)
                        r_lo, r_hi = _inside(oh, oh, sh, dh, kh, y0, y1)  # the others read zeros (padding)
                        for t0 in range(n_left, full_end, UR):  # the tiles that read no padding column
                            full(x, ptr_add(x_row, t0 * sw * xp), w0, ptr_add(o_row, t0 * op), r_lo, r_hi, s0, kw,
                                 along)
                        if rows == UR:
                            continue  # the rest of the row is in the band's columns
                        t0 = full_end
                        if rest_px & 16:
                            t16(x, ptr_add(x_row, t0 * sw * xp), w0, ptr_add(o_row, t0 * op), r_lo, r_hi, s0, kw, along)
                            t0 += 16
                        if rest_px & 8:
                            t8(x, ptr_add(x_row, t0 * sw * xp), w0, ptr_add(o_row, t0 * op), r_lo, r_hi, s0, kw, along)
                            t0 += 8
                        if rest_px & 4:
                            t4(x, ptr_add(x_row, t0 * sw * xp), w0, ptr_add(o_row, t0 * op), r_lo, r_hi, s0, kw, along)
                            t0 += 4
                        if rest_px & 2:
                            t2(x, ptr_add(x_row, t0 * sw * xp), w0, ptr_add(o_row, t0 * op), r_lo, r_hi, s0, kw, along)
                        for e in range(n_left + rest_px % 2 + n_right):
                            # a pixel of its own: an edge one skips the taps whose column is padding
                            q = e if e < n_left else mid_end - rest_px % 2 - n_left + e
                            s_lo, s_hi = _inside(q, q, sw, dw, kw, x0, x1)
                            one(x, ptr_add(x_row, q * sw * xp), w0, ptr_add(o_row, q * op), r_lo, r_hi, s_lo, s_hi,
                                along)
                    if rows < UR:
                        continue
                    # a band of UR rows: the pixels outside the rows' whole tiles make columns, each a
                    # whole tile down the band (a 7-pixel row is then no 3 + 3 + 1 but whole tiles
                    # only), that skips the taps of its rows' padding and, at an edge, its columns'
                    r_lo, r_hi = _inside(oh0, oh0 + UR - 1, sh, dh, kh, y0, y1)
                    for e in range(columns):
                        q = e if e < n_left else full_end - n_left + e
                        s_lo, s_hi = _inside(q, q, sw, dw, kw, x0, x1)
                        full(x, ptr_add(x_img, oh0 * sh * xh + q * sw * xp), w0, ptr_add(o_img, oh0 * oh_s + q * op),
                             r_lo, r_hi, s_lo, s_hi, down)
            chunk_done(work, lo, hi)

    return direct_blocked_jobs


@functools.lru_cache(maxsize=None)
def _compiled(ur: int, kt: int, vbytes: int, cw: int) -> Callable:
    return _build(ur, kt, vbytes, cw)


#: The weights of a tile of output blocks, per slice of the input blocks, at most: 128 KiB stays
#: in L2 on every target (512 KiB on Zen 3, 1 MiB on Zen 4, 1-2 MiB on the Xeons) while a band's
#: tiles read it; the tiles then go over the band once per slice, adding onto the output.
#: (A 512->512 3x3 layer's 590 KiB a tile of 4 blocks came from L3 for every tile of 3 pixels.)
SLICE_BYTES = 128 << 10


def row_tiles(ow: int, most: int) -> tuple[int, int]:
    """``(pixels, padded width)``: the register tile for an output row of ``ow`` pixels, at
    most ``most``, balanced so the row padded to whole tiles wastes fewer columns than tiles."""
    tiles = -(-ow // most)
    pixels = -(-ow // tiles)
    return pixels, tiles * pixels


def block_channels(vector_bytes: int, dtype: np.dtype | str) -> int:
    """Channels in one block: one SIMD vector of ``dtype``."""
    return vector_bytes // np.dtype(dtype).itemsize


def tile_shape(out_blocks: int, pixels: int, blocks: int) -> tuple[int, int]:
    """``(pixels, blocks)`` of the register tile for a group of ``out_blocks`` output blocks:
    the configured ``blocks`` where they divide ``out_blocks``, else the most that do, with
    as many more pixels as keep the accumulator count (``pixels * blocks``)."""
    b = max(d for d in range(1, max(1, min(blocks, out_blocks)) + 1) if out_blocks % d == 0)
    return pixels * blocks // b, b


def _check_rows(where: str, oh: int, ow: int, hp: int, wp: int, kernel: tuple[int, int], stride: tuple[int, int],
                dilation: tuple[int, int], pixels: int, padded: str = "padded ", tail: bool = False) -> None:
    """Refuse an output of ``oh x ow`` (rows of whole ``pixels``-pixel tiles, or ``tail``: and
    one shorter tile) whose taps would read past an input of ``hp x wp`` (the kernels check no bound)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    if pixels < 1 or (ow % pixels and not tail):
        raise ValueError(f"{where}: the output row ({ow}) must be a whole number of {pixels}-pixel tiles")
    if (oh - 1) * sh + (kh - 1) * dh >= hp or (ow - 1) * sw + (kw - 1) * dw >= wp:
        raise ValueError(f"{where}: output {oh}x{ow} reads past the {padded}input {hp}x{wp}")


def direct_blocked(x: np.ndarray, w: np.ndarray, out: np.ndarray, kernel: tuple[int, int],
                   stride: tuple[int, int], dilation: tuple[int, int], pixels: int, vector_bytes: int, *,
                   x_nhwc: bool = False, out_nhwc: bool = False, rows: tuple[int, int] | None = None,
                   cols: tuple[int, int] | None = None) -> None:
    """``out`` = the direct convolution of blocked ``x`` with blocked ``w``: one call of
    :func:`plan_direct_blocked` (which says what each argument is)."""
    plan_direct_blocked(x.shape, x.dtype, w, out.shape, kernel, stride, dilation, pixels, vector_bytes,
                        x_nhwc=x_nhwc, out_nhwc=out_nhwc, rows=rows, cols=cols)(x, out)


def plan_direct_blocked(x_shape: tuple[int, ...], dtype: np.dtype, w: np.ndarray, out_shape: tuple[int, ...],
                        kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], pixels: int,
                        vector_bytes: int, *, x_nhwc: bool = False, out_nhwc: bool = False,
                        rows: tuple[int, int] | None = None, cols: tuple[int, int] | None = None
                        ) -> Callable[[np.ndarray, np.ndarray], None]:
    """``run(x, out)``: ``out`` = the direct convolution of blocked ``x`` with blocked ``w``
    (see the module docstring), for an input of ``x_shape`` and an output of ``out_shape``,
    both of ``dtype``; output rows are split over ``numba.get_num_threads()`` threads.

    Every shape is checked here, once; ``run`` checks only that its arrays have those
    shapes, ``dtype`` and C order (the checks of every call took 13 us on the Zen 1 VM, a
    tenth of a 3.6 MFLOP layer's call).

    ``w`` is ``(G, KT, CB, R, S, CW, B * W)``: the register tile is ``pixels`` x ``B``
    output blocks (:func:`tile_shape`), its ``B`` weight vectors of a tap and input
    channel side by side; ``out`` has ``KT * B`` blocks a group.
    ``x_nhwc``: ``x`` is plain NHWC ``(N, H, W, C)`` instead (which needs no padding, whole
    blocks of ``W`` channels a group and rows that read no column past the image);
    ``out_nhwc``: ``out`` is ``(N, OH, OW, K)`` (whole blocks of ``W`` outputs a group, rows
    of whole tiles). A layer that allows it skips that copy: a block is then ``W``
    neighbouring channels of one pixel. ``rows``, ``cols``: the input rows ``[y0, y1)`` and
    columns ``[x0, x1)`` that hold the image, the others being zeros (its padding)
    (default: every row and column). Rows go in bands of ``pixels``: each row's whole tiles
    of ``pixels`` along it that read no padding column, then its other pixels (the edges
    and the rest) as whole tiles down the band's columns; a band of fewer rows ends each row
    in shorter tiles and one-pixel tiles. A tile skips the taps whose column is padding for
    its pixels and those whose row is padding for all of them. Every address the kernel
    forms is checked first."""
    x_shape, out_shape, dtype = tuple(x_shape), tuple(out_shape), np.dtype(dtype)
    g, kt, cb, kh, kw, cw, tile = w.shape
    width = block_channels(vector_bytes, dtype)
    blocks = tile // width
    if not (dtype == w.dtype and tile == blocks * width and blocks >= 1 and 1 <= cw <= width
            and w.flags.c_contiguous):
        raise ValueError(f"direct-blocked: C-contiguous arrays of output blocks of {width}"
                         f" {dtype} channels, input blocks of at most as many, expected; got weights {w.shape} "
                         f"({dtype}, {w.dtype})")
    kb = kt * blocks
    if x_nhwc:
        n, h, wd, c = x_shape
        if c != g * cb * cw:
            raise ValueError(f"direct-blocked: input {x_shape} does not hold {g} groups of {cb} blocks of {cw}")
        xs, hp, wp = (h * wd * c, cw, wd * c, c), h, wd
    else:
        n, g_x, cb_x, hp, wp, cw_x = x_shape
        if (g_x, cb_x, cw_x) != (g, cb, cw):
            raise ValueError(f"direct-blocked: shapes disagree: input {x_shape}, weights {w.shape}, output {out_shape}")
        xs = (g * cb * hp * wp * cw, hp * wp * cw, wp * cw, cw)
    if out_nhwc:
        n_o, oh, ow, k = out_shape
        if k != g * kb * width:
            raise ValueError(f"direct-blocked: output {out_shape} does not hold {g} groups of {kb} blocks of {width}")
        os_ = (oh * ow * k, width, ow * k, k)
    else:
        n_o, g_o, kb_o, oh, ow, w_o = out_shape
        if (g_o, kb_o, w_o) != (g, kb, width):
            raise ValueError(f"direct-blocked: shapes disagree: input {x_shape}, weights {w.shape}, output {out_shape}")
        os_ = (g * kb * oh * ow * width, oh * ow * width, ow * width, width)
    if n_o != n or (kh, kw) != tuple(kernel):
        raise ValueError(f"direct-blocked: shapes disagree: input {x_shape}, weights {w.shape}, output {out_shape}")
    _check_rows("direct-blocked", oh, ow, hp, wp, kernel, stride, dilation, pixels, "" if x_nhwc else "padded ",
                tail=True)
    y0, y1 = rows if rows is not None else (0, hp)
    x0, x1 = cols if cols is not None else (0, wp)
    if not (0 <= y0 <= y1 <= hp and 0 <= x0 <= x1 <= wp):
        raise ValueError(f"direct-blocked: image rows [{y0}, {y1}) and columns [{x0}, {x1}) are not those of "
                         f"the {hp}x{wp} input")
    (_, sw), (_, dw) = stride, dilation
    n_left = min(ow, -(-x0 // sw))  # pixels whose first tap reads a padding column
    n_right = ow - min(ow, max(n_left, -(-(x1 - (kw - 1) * dw) // sw)))  # those whose last one does
    # a block's channels as a constant for whole blocks and an image's three colours (a count
    # known only at run time cost those first layers 10%), else 0: any count, read at run time
    jobs = _compiled(pixels, blocks, vector_bytes, cw if cw in (width, 3) else 0)
    flops = 2.0 * n * g * kb * width * oh * ow * cb * kh * kw * cw
    bands = -(-oh // pixels)
    cb_step = max(1, SLICE_BYTES // (kh * kw * cw * tile * dtype.itemsize))
    geometry = (g, cw, cb, kt, oh, ow, *kernel, *stride, *dilation, *xs, *os_, y0, y1, x0, x1, n_left, n_right,
                cb_step)

    def run(x: np.ndarray, out: np.ndarray) -> None:
        if not (x.shape == x_shape and out.shape == out_shape and x.dtype == dtype and out.dtype == dtype
                and x.flags.c_contiguous and out.flags.c_contiguous):
            raise ValueError(f"direct-blocked: planned for C-contiguous input {x_shape} and output {out_shape} "
                             f"of {dtype}; got {x.shape} {x.dtype} and {out.shape} {out.dtype}")
        # flat views: the kernel addresses them by pointer, and one compiled kernel then serves
        # the blocked and the NHWC arrays alike (each rank pair compiled its own kernel and tiles)
        parallel_for(jobs, n * g * kt * bands, x.reshape(-1), w, out.reshape(-1), *geometry, flops=flops)

    return run
