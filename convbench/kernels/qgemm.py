"""The u8s8 GEMM micro-kernel shared by ``indirect`` and ``im2col-numba`` (8-bit).

The 8-bit twin of :mod:`.gemm`, reached the same way, through a table
``offs[p, t]`` of row offsets (``-1``: the zero-point vector)::

    acc[n, p, g*Kg + k] = corr[k] + sum_{t < T, c < Cg} A(n, p, t)[c] * W[g, t, c, k]
    out = clamp(rint(float32(acc) * mult[k]) + y_zero, 0, 255)       (u8)

with u8 ``A``, s8 ``W`` and int32 ``acc`` (:mod:`.requant`: ``corr`` is the
bias minus the zero-point correction, padding rows hold ``x_zero``).

The tile is ``MR`` rows x ``NR`` int32 columns from the machine's
:class:`~convbench.kernels.quant_configs.QuantKernelConfig` (``8x32`` on
AVX-512 VNNI). The reduction runs four channels (a "quad", XNNPACK's ``c4``)
at a time: each A row's four bytes are one int32 broadcast, and the packed
weights hold, per quad, ``NR`` columns of four s8 weights, so one
:func:`~convbench.kernels._qintrinsics.vdot4` per accumulator vector does
``W x 4`` multiply-adds (one ``vpdpbusd``). Each tap's channels are padded
to whole quads with zero weights, so the last, partial quad of a row is read
as one word whose extra bytes meet zero weights, except where that word
would end past the input array: there it is read byte by byte. On AVX2 the
weights are packed as int16 and ``vpmaddwd`` does the work (exact: see
:mod:`._qintrinsics`). Every tile is reduced whole in registers (no
reduction blocking: int32 partial sums would need a buffer of their own, and
the 8 u8 rows of even a 3x3x512 reduction, 36 KiB, stay in L1/L2) and
requantized to u8 straight from them, one vector at a time; the weights are
blocked by output channels (``nc``, ``block_bytes``) to stay in L2 across
the tiles of a thread's chunk.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numba import njit

from ._intrinsics import data_ptr, ptr_add, stack_alloc, stack_pointers, stack_vectors, vzero
from ._qintrinsics import DOT_MADDWD, load_u32, vdot4, vrequant
from . import _bounds
from ._cache_guard import named_for
from ._parallel import chunk_done, next_chunk, parallel_for
from .aligned import aligned_empty
from .configs import QuantKernelConfig, active_quant_config
from .requant import requant_one


def _build(mr_: int, nvec_: int, vbytes_: int, dot_: int) -> Callable:
    """The jitted job function for an ``mr_ x nvec_`` tile of ``vbytes_`` int32 vectors."""
    MR = mr_
    NVEC = nvec_
    VB = vbytes_
    DOT = dot_
    W = vbytes_ // 4
    NR = nvec_ * W
    NACC = mr_ * nvec_
    # quads per trip of the inner loop (a pointer increment per row is paid once per QU
    # quads); on AVX2 two made LLVM interleave them and spill (16 ymm), 3% slower
    QU = 1 if dot_ == DOT_MADDWD else 2

    @njit(nogil=True, cache=True)  # no fastmath: the requantization is IEEE's
    @named_for(MR, NVEC, VB, DOT)
    def qgemm_jobs(work, a, zero, offs, nimg, img_stride, groups, cg, kg, packed, corr, mult, y_zero,
                   nc_panels, out, out32):  # pragma: no cover - compiled
        """Jobs from ``work`` of :meth:`QGemmKernel.run`: one MR-pixel tile of one
        image, group and block of ``nc_panels`` NR-panels (tile fastest). Per
        job and panel the whole reduction runs in registers, then the tile is
        requantized into ``out`` (u8) or, when ``out32`` is not empty, written
        there as int32 accumulators (tests). Written inline, as in :mod:`.gemm`."""
        m_pix, taps = offs.shape
        nnb = (kg + NR - 1) // NR
        nblocks = (nnb + nc_panels - 1) // nc_panels
        k_all = groups * kg
        tpi = (m_pix + MR - 1) // MR
        ntiles = nimg * tpi
        cfull = cg // 4
        ctail = cg - 4 * cfull
        tap_len = (cfull + (ctail > 0)) * 4 * NR
        panel = taps * tap_len
        raw = out32.shape[0] > 0
        yz = np.float32(y_zero)
        acc = stack_vectors(corr, NACC, VB)
        rows = stack_pointers(a, MR)
        edge = stack_alloc(corr, NR)
        alen = a.shape[0]
        xp = data_ptr(a)
        zp0 = data_ptr(zero)
        bp0 = data_ptr(packed)
        cp = data_ptr(corr)
        mp = data_ptr(mult)
        outp = data_ptr(out)
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                return
            for job in range(lo, hi):
                gb = job // ntiles
                tile = job - gb * ntiles
                g = gb // nblocks
                nb0 = (gb - g * nblocks) * nc_panels
                nb1 = min(nb0 + nc_panels, nnb)
                n = tile // tpi
                p0 = (tile - n * tpi) * MR
                mr = min(MR, m_pix - p0)
                ap = ptr_add(xp, n * img_stride + g * cg)
                zp = ptr_add(zp0, g * cg)
                # the largest row offset whose partial last quad can be read as one word
                # (its extra bytes meet zero weights) without leaving ``a``
                word_lim = alen - (n * img_stride + g * cg + 4 * cfull + 4)
                for nb in range(nb0, nb1):
                    nr = min(NR, kg - nb * NR)
                    bp = ptr_add(bp0, (g * nnb + nb) * panel)
                    for v in range(NACC):
                        vzero(ptr_add(acc, v * W), VB)
                    for t in range(taps):
                        # rows past mr repeat the last valid row: same loads, not stored
                        omax = -1
                        for i in range(MR):
                            o = offs[p0 + min(i, mr - 1), t]
                            rows[i] = zp if o < 0 else ptr_add(ap, o)
                            omax = max(omax, o)
                        bt = ptr_add(bp, t * tap_len)
                        q = 0
                        while q + QU <= cfull:
                            # constant trip counts: unrolled, accumulators in registers
                            for u in range(QU):
                                bq = ptr_add(bt, (q + u) * 4 * NR)
                                for i in range(MR):
                                    xw = load_u32(ptr_add(rows[i], 4 * (q + u)))
                                    for v in range(NVEC):
                                        vdot4(ptr_add(acc, (i * NVEC + v) * W), xw, ptr_add(bq, v * 4 * W), VB, DOT)
                            q += QU
                        for q in range(q, cfull):
                            bq = ptr_add(bt, q * 4 * NR)
                            for i in range(MR):
                                xw = load_u32(ptr_add(rows[i], 4 * q))
                                for v in range(NVEC):
                                    vdot4(ptr_add(acc, (i * NVEC + v) * W), xw, ptr_add(bq, v * 4 * W), VB, DOT)
                        if ctail > 0 and omax <= word_lim:
                            # the last 1-3 channels and 4-ctail bytes after them (zero weights)
                            bq = ptr_add(bt, cfull * 4 * NR)
                            for i in range(MR):
                                xw = load_u32(ptr_add(rows[i], 4 * cfull))
                                for v in range(NVEC):
                                    vdot4(ptr_add(acc, (i * NVEC + v) * W), xw, ptr_add(bq, v * 4 * W), VB, DOT)
                        elif ctail > 0:
                            # near the end of ``a``: byte by byte, never past it
                            bq = ptr_add(bt, cfull * 4 * NR)
                            for i in range(MR):
                                r = ptr_add(rows[i], 4 * cfull)
                                word = np.int64(r[0])
                                if ctail > 1:
                                    word |= np.int64(r[1]) << 8
                                if ctail > 2:
                                    word |= np.int64(r[2]) << 16
                                xw = np.int32(word)
                                for v in range(NVEC):
                                    vdot4(ptr_add(acc, (i * NVEC + v) * W), xw, ptr_add(bq, v * 4 * W), VB, DOT)
                    col = g * kg + nb * NR
                    orow = (n * m_pix + p0) * k_all + col
                    if raw:
                        for i in range(mr):
                            for j in range(nr):
                                out32[orow + i * k_all + j] = acc[i * NR + j] + corr[col + j]
                    elif nr == NR and mr == MR:
                        # constant trip counts: the accumulators are requantized from registers
                        for i in range(MR):
                            for v in range(NVEC):
                                vrequant(ptr_add(outp, orow + i * k_all + v * W), ptr_add(acc, i * NR + v * W),
                                         ptr_add(cp, col + v * W), ptr_add(mp, col + v * W), yz, VB)
                    elif nr == NR:
                        for i in range(mr):
                            for v in range(NVEC):
                                vrequant(ptr_add(outp, orow + i * k_all + v * W), ptr_add(acc, i * NR + v * W),
                                         ptr_add(cp, col + v * W), ptr_add(mp, col + v * W), yz, VB)
                    else:
                        for i in range(mr):
                            for j in range(nr):
                                edge[j] = acc[i * NR + j] + corr[col + j]
                                out[orow + i * k_all + j] = requant_one(edge[j], mult[col + j], yz)
            chunk_done(work, lo, hi)

    return qgemm_jobs


#: The fewest tiles a thread's chunk holds (as :data:`.gemm.MIN_TILES`).
MIN_TILES = 4


@functools.lru_cache(maxsize=None)
def _compiled(mr: int, nvec: int, vbytes: int, dot: int) -> Callable:
    return _build(mr, nvec, vbytes, dot)


def jobs_for(config: QuantKernelConfig) -> Callable:
    """The jitted job function of ``config`` (for tests and assembly checks)."""
    return _compiled(config.mr, config.nr_vectors, config.vector_bytes, config.dot)


def pack_qweights(weight: np.ndarray, groups: int, config: QuantKernelConfig,
                  merge_taps: bool = False) -> np.ndarray:
    """s8 OIHW weights -> flat panels ``(G, ceil(Kg/NR), T, ceil(C/4), NR, 4)``.

    ``T, C`` are the taps and channels per group (``merge_taps``: one "tap"
    of ``R*S*Cg`` channels, ordered ``(r, s, c)``: an im2row row). Columns
    past ``Kg`` and channels past ``C`` (to a whole quad) are zero weights.
    For ``DOT_MADDWD`` the ``NR x 4`` block of a quad is int16, laid out per
    vector as its channel pairs (0, 2) then (1, 3): ``(NVEC, 2, W, 2)``.
    """
    k, cg, r, s = weight.shape
    kg, taps, nr = k // groups, r * s, config.nr
    w = weight.reshape(groups, kg, cg, taps).transpose(0, 1, 3, 2)  # (G, Kg, T, Cg)
    if merge_taps:
        w = w.reshape(groups, kg, 1, taps * cg)
    _, _, t, c = w.shape
    nnb, cq = -(-kg // nr), -(-c // 4)
    full = np.zeros((groups, nnb * nr, t, cq * 4), np.int8)
    full[:, :kg, :, :c] = w
    p = full.reshape(groups, nnb, nr, t, cq, 4).transpose(0, 1, 3, 4, 2, 5)  # (G, nnb, T, cq, NR, 4)
    if config.dot == DOT_MADDWD:  # the pairs (0, 2) and (1, 3) of each quad (see _qintrinsics)
        wl = config.vector_bytes // 4
        p = p[..., [0, 2, 1, 3]].reshape(groups, nnb, t, cq, config.nr_vectors, wl, 2, 2)
        p = p.transpose(0, 1, 2, 3, 4, 6, 5, 7)
    dtype = np.int16 if config.dot == DOT_MADDWD else np.int8
    out = aligned_empty(p.size, dtype)
    out.reshape(p.shape)[...] = p
    return out


@dataclass(frozen=True)
class QGemmKernel:
    """The configured u8s8 GEMM micro-kernel: ``pack`` then ``run`` (same object)."""

    config: QuantKernelConfig

    @property
    def mr(self) -> int:
        return self.config.mr

    @property
    def nr(self) -> int:
        return self.config.nr

    def pack(self, weight: np.ndarray, groups: int, merge_taps: bool = False) -> np.ndarray:
        """s8 OIHW weights -> this tile's packed panels (see :func:`pack_qweights`)."""
        return pack_qweights(weight, groups, self.config, merge_taps)

    def nc_panels(self, packed: np.ndarray, groups: int, kg: int) -> int:
        """NR-panels per cache block: at most ``nc`` channels and ``block_bytes`` of weights."""
        panel_bytes = packed.nbytes // max(1, groups * -(-kg // self.nr))
        fit = self.config.block_bytes // max(1, panel_bytes)
        return max(1, min(self.config.nc // self.nr, fit))

    def run(self, a: np.ndarray, zero: np.ndarray, offs: np.ndarray, nimg: int, img_stride: int,
            groups: int, cg: int, kg: int, packed: np.ndarray, corr: np.ndarray, mult: np.ndarray,
            y_zero: int, out: np.ndarray, out32: np.ndarray | None = None) -> None:
        """``out[n, p, g*kg + k]`` (flat u8) = the requantized ``corr[k] + sum_{t,c}
        a[n*img_stride + offs[p,t] + g*cg + c] * W[g, t, c, k]``.

        ``a`` and ``zero`` (``groups*cg + 3`` bytes of ``x_zero``: a row's
        last partial quad may be read as a whole word) are flat u8,
        ``offs`` ``(M, T)`` int64 (``-1`` reads ``zero``), ``packed`` from
        :meth:`pack` (with ``T`` taps of ``cg`` channels), ``corr`` int32 and
        ``mult`` float32 of ``groups*kg``. With ``out32`` (flat int32) the
        accumulators go there instead and ``out`` is not written. The caller
        guarantees the sizes: the kernel does not check them.
        """
        raw = out32 is not None
        o32 = out32 if raw else _NO_INT32
        if _bounds.enabled():
            _check_bounds(a, zero, offs, nimg, img_stride, groups, cg, kg, packed, corr, mult,
                          o32 if raw else out, self.config)
        ncp = self.nc_panels(packed, groups, kg)
        nblocks = -(-(-(-kg // self.nr)) // ncp)
        njobs = groups * nblocks * nimg * (-(-offs.shape[0] // self.mr))
        parallel_for(jobs_for(self.config), njobs, a, zero, offs, nimg, img_stride, groups, cg, kg,
                     packed, corr, mult, int(y_zero), ncp, out, o32, min_chunk=MIN_TILES)


_NO_INT32 = np.zeros(0, np.int32)


def _check_bounds(a: np.ndarray, zero: np.ndarray, offs: np.ndarray, nimg: int, img_stride: int,
                  groups: int, cg: int, kg: int, packed: np.ndarray, corr: np.ndarray, mult: np.ndarray,
                  out: np.ndarray, config: QuantKernelConfig) -> None:
    """What the kernel touches through pointers, against the array sizes (see :mod:`._bounds`)."""
    m_pix, taps = offs.shape
    _bounds.require_offsets("qgemm", offs, a, nimg, img_stride, groups * cg, zero)
    if cg % 4 and (offs < 0).any():  # the zero rows' last quad is read as a word
        _bounds.require("qgemm", "the zero vector", zero, 0, groups * cg + 2)
    per_tap = -(-cg // 4) * 4 * config.nr
    _bounds.require("qgemm", "the packed weights", packed, 0, groups * -(-kg // config.nr) * taps * per_tap - 1)
    _bounds.require("qgemm", "the corrections", corr, 0, groups * kg - 1)
    _bounds.require("qgemm", "the multipliers", mult, 0, groups * kg - 1)
    _bounds.require("qgemm", "the output", out, 0, nimg * m_pix * groups * kg - 1)


def qgemm_kernel(config: QuantKernelConfig | None = None) -> QGemmKernel:
    """The u8s8 GEMM kernel under ``config`` (default: the active one)."""
    return QGemmKernel(config or active_quant_config())


class PackedQGemm:
    """``A @ B`` for u8 ``A (M, K)`` and s8 ``B (K, N)`` through the micro-kernel, B packed once.

    ``raw()`` gives the int32 products (tests against numpy int64);
    ``__call__`` the u8 requantization with ``corr``/``mult``/``y_zero``.
    """

    def __init__(self, b: np.ndarray, config: QuantKernelConfig | None = None) -> None:
        if b.dtype != np.int8 or b.ndim != 2:
            raise TypeError(f"PackedQGemm: B must be a 2-D int8 array; got {b.dtype} {b.shape}")
        self.kdim, self.n = b.shape
        self.kernel = qgemm_kernel(config)
        self.packed = self.kernel.pack(np.ascontiguousarray(b.T).reshape(self.n, self.kdim, 1, 1), 1)
        self.zero = np.zeros(self.kdim + 3, np.uint8)

    def _run(self, a: np.ndarray, corr: np.ndarray, mult: np.ndarray, y_zero: int,
             out: np.ndarray, out32: np.ndarray | None) -> None:
        if a.dtype != np.uint8 or a.ndim != 2 or a.shape[1] != self.kdim:
            raise TypeError(f"PackedQGemm: A must be a uint8 (M, {self.kdim}) array; got {a.dtype} {a.shape}")
        m = a.shape[0]
        offs = (np.arange(m, dtype=np.int64) * self.kdim).reshape(m, 1)
        self.kernel.run(np.ascontiguousarray(a).reshape(-1), self.zero, offs, 1, 0, 1, self.kdim, self.n,
                        self.packed, corr, mult, y_zero, out.reshape(-1), out32)

    def raw(self, a: np.ndarray) -> np.ndarray:
        """The int32 ``A @ B``."""
        out32 = np.empty((a.shape[0], self.n), np.int32)
        self._run(a, np.zeros(self.n, np.int32), np.ones(self.n, np.float32), 0, _NO_U8, out32.reshape(-1))
        return out32

    def __call__(self, a: np.ndarray, corr: np.ndarray, mult: np.ndarray, y_zero: int) -> np.ndarray:
        """u8 ``clamp(rint(float32(A @ B + corr) * mult) + y_zero, 0, 255)``."""
        corr = np.ascontiguousarray(corr, np.int32)
        mult = np.ascontiguousarray(mult, np.float32)
        if corr.shape != (self.n,) or mult.shape != (self.n,):
            raise ValueError(f"PackedQGemm: corr and mult must have shape ({self.n},)")
        out = aligned_empty((a.shape[0], self.n), np.uint8)
        self._run(a, corr, mult, y_zero, out, None)
        return out


_NO_U8 = np.zeros(0, np.uint8)
