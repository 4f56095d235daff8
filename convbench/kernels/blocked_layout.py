"""Copies between NCHW / NHWC and the channel-blocked layout of ``direct-blocked``.

The blocked arrays are ``(N, B, Hp, Wp, W)``: ``B`` blocks of ``W`` channels
(one SIMD vector), each block's image zero-padded. Which channel lane ``l``
of block ``b`` holds is ``base[b] + l * step[b]`` for ``l < valid[b]`` (the
other lanes are zeros), so one pair of copies serves both of the algorithm's
arrangements: dense layers (a block is ``W`` consecutive channels of one
group) and depthwise ones (a block is ``W`` groups; on the output side the
``M`` outputs of a group are ``M`` apart).

Both copies are numba on the kernels' pool (:mod:`._parallel`), one job a
row: numpy's strided slice assignments ran them on one thread at a few GB/s,
5-15% of a 3x3 call and more of a 1x1 one (issue 25's gap to oneDNN, issue
31's part of the call that did not halve on two threads).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numba import njit

from ._intrinsics import data_ptr, ptr_add, vcopy
from ._parallel import chunk_done, next_chunk, parallel_for


@njit(nogil=True, cache=True)
def _pack_jobs(work, x, xb, base, valid, sn, sc, sh, sw, top, left, h, w):  # pragma: no cover - compiled
    """Rows ``(n, b, ih)`` of ``xb`` from ``work``: the padded row, zeros where there is no input."""
    nb, hp, wp, lanes = xb.shape[1], xb.shape[2], xb.shape[3], xb.shape[4]
    vbytes = lanes * xb.itemsize
    xp, bp = data_ptr(x), data_ptr(xb)
    zero = xb.dtype.type(0)
    while True:
        lo, hi = next_chunk(work)
        if lo >= hi:
            return
        for job in range(lo, hi):
            ih = job % hp
            rest = job // hp
            b = rest % nb
            n = rest // nb
            dst = ptr_add(bp, job * wp * lanes)
            y = ih - top
            if y < 0 or y >= h:
                for e in range(wp * lanes):
                    dst[e] = zero
                continue
            for e in range(left * lanes):
                dst[e] = zero
            for e in range((left + w) * lanes, wp * lanes):
                dst[e] = zero
            v = valid[b]
            src = ptr_add(xp, n * sn + base[b] * sc + y * sh)
            if sc == 1 and v == lanes and sw == lanes:
                # NHWC pixels that are whole blocks (a 3-channel first layer): one run, one
                # loop LLVM vectorises, not a 3-lane loop per pixel (a third of that call)
                d = ptr_add(dst, left * lanes)
                for e in range(w * lanes):
                    d[e] = src[e]
                continue
            if sc == 1 and v == lanes and vbytes in (16, 32, 64):
                # NHWC, whole blocks: one vector a pixel (a loop of a runtime count of 8 lanes
                # between pointers that may alias cost 11 ns a pixel on the Zen 1 VM, most of
                # a small layer's pack)
                for iw in range(w):
                    d = ptr_add(dst, (left + iw) * lanes)
                    s = ptr_add(src, iw * sw)
                    if vbytes == 32:
                        vcopy(d, s, 32)
                    elif vbytes == 64:
                        vcopy(d, s, 64)
                    else:
                        vcopy(d, s, 16)
                continue
            for iw in range(w):
                d = ptr_add(dst, (left + iw) * lanes)
                s = ptr_add(src, iw * sw)
                if sc == 1:  # NHWC: the block's channels are contiguous, a vector copy
                    for lane in range(v):
                        d[lane] = s[lane]
                else:
                    for lane in range(v):
                        d[lane] = s[lane * sc]
                for lane in range(v, lanes):
                    d[lane] = zero
        chunk_done(work, lo, hi)


@njit(nogil=True, cache=True)
def _unpack_jobs(work, ob, y, base, step, valid, sn, sc, sh, sw, ow):  # pragma: no cover - compiled
    """Rows ``(n, oh, b)`` from ``work``: block ``b``'s valid lanes of output row ``oh`` into ``y``."""
    nb, oh_n, owp, lanes = ob.shape[1], ob.shape[2], ob.shape[3], ob.shape[4]
    op, yp = data_ptr(ob), data_ptr(y)
    while True:
        lo, hi = next_chunk(work)
        if lo >= hi:
            return
        for job in range(lo, hi):
            b = job % nb
            rest = job // nb
            oh = rest % oh_n
            n = rest // oh_n
            src = ptr_add(op, ((n * nb + b) * oh_n + oh) * owp * lanes)
            dst = ptr_add(yp, n * sn + base[b] * sc + oh * sh)
            v, st = valid[b], step[b] * sc
            for j in range(ow):
                s = ptr_add(src, j * lanes)
                d = ptr_add(dst, j * sw)
                if st == 1:  # NHWC, one output a group: contiguous, a vector copy
                    for lane in range(v):
                        d[lane] = s[lane]
                else:
                    for lane in range(v):
                        d[lane * st] = s[lane]
        chunk_done(work, lo, hi)


def _strides(shape: tuple[int, ...], layout: str) -> tuple[int, int, int, int, int, int, int]:
    """``(N, C, H, W)`` and the element strides of n, c, h, w of a C-contiguous array."""
    if layout == "nhwc":
        n, h, w, c = shape
        return n, c, h, w, h * w * c, 1, w * c
    n, c, h, w = shape
    return n, c, h, w, c * h * w, h * w, w


@dataclass(frozen=True)
class Lanes:
    """Which channel each lane of each block holds (see the module docstring), checked once:
    the copies of a prepared call then check only that it fits their arrays."""

    base: np.ndarray  #: int64, a block's first channel
    step: np.ndarray  #: int64, the channel distance between a block's lanes
    valid: np.ndarray  #: int64, a block's lanes that hold a channel (the rest are zeros)
    lanes: int  #: lanes in a block
    channels: int  #: channels of the array it maps

    def __post_init__(self) -> None:
        base, step, valid = self.base, self.step, self.valid
        if not (len(base) == len(step) == len(valid)):
            raise ValueError(f"lane map: {len(base)}, {len(step)}, {len(valid)} entries")
        last = base + np.maximum(valid - 1, 0) * step
        if ((valid < 0) | (valid > self.lanes) | (base < 0) | (step < 1)
                | ((valid > 0) & (last >= self.channels))).any():
            raise ValueError(f"lane map: a block's lanes reach past the {self.channels} channels")

    @cached_property
    def unit(self) -> bool:
        """Whether every block's lanes are neighbouring channels (what an input map needs)."""
        return bool((self.step == 1).all())

    def fits(self, where: str, channels: int, blocks: int, lanes: int, unit: bool = False) -> None:
        """Refuse arrays of another channel count, block count or width (or a spread-out map
        where ``unit`` steps are needed)."""
        if (channels, blocks, lanes) != (self.channels, len(self.base), self.lanes) or (unit and not self.unit):
            raise ValueError(f"{where}: a lane map of {len(self.base)} blocks of {self.lanes} over {self.channels} "
                             f"channels does not fit {blocks} blocks of {lanes} over {channels} channels")


def to_blocked(x: np.ndarray, layout: str, lanes_of: Lanes, top: int, left: int, xb: np.ndarray) -> None:
    """Fill ``xb`` ``(N, B, Hp, Wp, W)`` from ``x`` (NCHW or NHWC): lane ``l`` of block ``b`` is
    channel ``base[b] + l`` (``l < valid[b]``), the image placed at ``(top, left)``, zeros
    everywhere else."""
    n, c, h, w, sn, sc, sh_ = _strides(x.shape, layout)
    n_b, nb, hp, wp, lanes = xb.shape
    if not (x.flags.c_contiguous and xb.flags.c_contiguous and x.dtype == xb.dtype and n_b == n):
        raise ValueError(f"to_blocked: input {x.shape} {x.dtype} and blocked {xb.shape} {xb.dtype} do not fit")
    if top < 0 or left < 0 or top + h > hp or left + w > wp:
        raise ValueError(f"to_blocked: a {h}x{w} image at ({top}, {left}) does not fit {hp}x{wp}")
    lanes_of.fits("to_blocked", c, nb, lanes, unit=True)
    sw = c if layout == "nhwc" else 1
    parallel_for(_pack_jobs, n * nb * hp, x, xb, lanes_of.base, lanes_of.valid, sn, sc, sh_, sw, top, left, h, w,
                 nbytes=2.0 * xb.nbytes)


def from_blocked(ob: np.ndarray, layout: str, lanes_of: Lanes, y: np.ndarray) -> None:
    """Fill ``y`` (NCHW or NHWC) from ``ob`` ``(N, B, OH, OWp, W)``: channel
    ``base[b] + l * step[b]`` is lane ``l`` of block ``b`` (``l < valid[b]``); the row's
    columns past ``y``'s width are dropped. Every channel of ``y`` must be some block's."""
    n, k, oh, ow, sn, sc, sh_ = _strides(y.shape, layout)
    n_b, nb, oh_b, owp, lanes = ob.shape
    if not (y.flags.c_contiguous and ob.flags.c_contiguous and y.dtype == ob.dtype and (n_b, oh_b) == (n, oh)
            and ow <= owp):
        raise ValueError(f"from_blocked: blocked {ob.shape} {ob.dtype} and output {y.shape} {y.dtype} do not fit")
    lanes_of.fits("from_blocked", k, nb, lanes)
    sw = k if layout == "nhwc" else 1
    parallel_for(_unpack_jobs, n * oh * nb, ob, y, lanes_of.base, lanes_of.step, lanes_of.valid, sn, sc, sh_, sw, ow,
                 nbytes=2.0 * y.nbytes)


def dense_lanes(groups: int, per_group: int, lanes: int) -> Lanes:
    """Blocks ``g * ceil(per_group / W) + blk``: ``W`` consecutive channels of one group each,
    the group's last block partly filled."""
    nblk = -(-per_group // lanes)
    g, blk = np.divmod(np.arange(groups * nblk, dtype=np.int64), nblk)
    return Lanes(g * per_group + blk * lanes, np.ones_like(g), np.minimum(lanes, per_group - blk * lanes), lanes,
                 groups * per_group)


def depthwise_lanes(groups: int, mult: int, lanes: int) -> Lanes:
    """Depthwise output blocks ``gb * mult + m``: lane ``l`` is output ``(gb * W + l) * mult + m``
    (``mult`` 1: the input's blocks of ``W`` groups)."""
    gb, m = np.divmod(np.arange(-(-groups // lanes) * mult, dtype=np.int64), mult)
    return Lanes(gb * lanes * mult + m, np.full_like(gb, mult), np.minimum(lanes, groups - gb * lanes), lanes,
                 groups * mult)
