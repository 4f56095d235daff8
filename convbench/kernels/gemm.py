"""The one GEMM micro-kernel shared by ``indirect`` and ``im2col-numba``.

Shape of the computation (per group ``g``)::

    out[n, p, g*Kg + k] = sum_{t < T, c < Cg} A(n, p, t)[c] * W[g, t, c, k]

where ``A(n, p, t)`` is a *row pointer*: for Indirect Convolution it is the
input pixel that tap ``t`` of output pixel ``p`` reads (or a zero vector for
a padding tap), for im2col it is row ``p`` of the im2col matrix (``T == 1``).
Both reach the kernel the same way, through a table ``offs[p, t]`` of element
offsets (``-1`` = the zero vector), so the micro-kernel, the packing and the
blocking are identical and only the algorithm differs.

The micro-kernel computes an ``MR x NR`` tile whose size comes from the
machine's :class:`~convbench.kernels.configs.KernelConfig` (8x32 float32 on
AVX-512, 5x16 on AVX2, ...). :func:`gemm_kernel` builds one compiled pair of
functions per configuration, with the tile as closure constants (numba
freezes them as compile-time constants, and its on-disk cache keys closures
by their constants, so each configuration keeps its own cached variant).
The accumulators are ``MR * nr_vectors`` explicit SIMD vectors in a stack
allocation that LLVM keeps in registers: the inner loop is ``MR`` broadcasts
and ``MR * nr_vectors`` register FMAs (``tests/test_kernels.py`` checks the
assembly).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numba import njit

from ._intrinsics import (data_ptr, lanes, ptr_add, stack_pointers, stack_vectors, vcopy, vfma,
                          vzero)
from . import _bounds
from ._cache_guard import named_for
from ._parallel import chunk_done, next_chunk, parallel_for
from .aligned import aligned_empty
from .configs import KernelConfig, active_config


def _build(mr_: int, nvec_: int, vbytes_: int) -> Callable:
    """The jitted ``conv_gemm_jobs`` for an ``mr_ x nvec_`` vector tile of ``vbytes_`` vectors."""
    MR = mr_
    NVEC = nvec_
    VB = vbytes_
    NACC = MR * NVEC
    KU = 4

    @njit(nogil=True, fastmath=True, cache=True)
    @named_for(MR, NVEC, VB)
    def conv_gemm_jobs(work, a, zero, offs, nimg, img_stride, groups, cg, kg, packed,
                       kblocks, nc_panels, out):  # pragma: no cover - compiled
        """Jobs from ``work`` of :meth:`GemmKernel.run`; a job is one MR-pixel tile
        of one image, group and NC block of output channels (jobs run tile
        fastest, so a chunk is consecutive tiles of one block). Loop order in
        a chunk: reduction block, tile, NR-panel: a tile's A rows stay in L1
        across the panels and the KC x NC block of packed weights stays in
        this core's L2 across the tiles. Splitting the output channels into
        jobs too gives two threads work to share on layers with few tiles
        (a 14x14 layer has 25), without making chunks too small to reuse B.

        The MR x NR micro-kernel is written inline, not as a second jitted
        function: a dispatcher in the closure would be pickled into numba's
        cache key with a per-process id, and the cache would never hit."""
        m_pix, taps = offs.shape
        W = lanes(a, VB)
        NR = NVEC * W
        nnb = (kg + NR - 1) // NR
        nblocks = (nnb + nc_panels - 1) // nc_panels
        k_all = groups * kg
        tpi = (m_pix + MR - 1) // MR
        ntiles = nimg * tpi
        panel = taps * cg * NR
        acc = stack_vectors(a, NACC, VB)
        rows = stack_pointers(a, MR)
        xp = data_ptr(a)
        zp0 = data_ptr(zero)
        bp0 = data_ptr(packed)
        outp = data_ptr(out)
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                return
            for kb in range(kblocks.shape[0]):
                t0 = kblocks[kb, 0]
                t1 = kblocks[kb, 1]
                c0 = kblocks[kb, 2]
                c1 = kblocks[kb, 3]
                accumulate = kb > 0
                for job in range(lo, hi):
                    gb = job // ntiles
                    tile = job - gb * ntiles
                    g = gb // nblocks
                    nb0 = (gb - g * nblocks) * nc_panels
                    nb1 = min(nb0 + nc_panels, nnb)
                    n = tile // tpi
                    p0 = (tile - n * tpi) * MR
                    mr = min(MR, m_pix - p0)
                    o_row = (n * m_pix + p0) * k_all + g * kg
                    ap = ptr_add(xp, n * img_stride + g * cg)
                    zp = ptr_add(zp0, g * cg)
                    for nb in range(nb0, nb1):
                        nr = min(NR, kg - nb * NR)
                        # -- micro-kernel: the mr x nr tile at out[o_row + nb*NR] --
                        op = ptr_add(outp, o_row + nb * NR)
                        bp = ptr_add(bp0, (g * nnb + nb) * panel)
                        full = mr == MR and nr == NR
                        for v in range(NACC):
                            vzero(ptr_add(acc, v * W), VB)
                        if accumulate:
                            if full:
                                for i in range(MR):
                                    for v in range(NVEC):
                                        vcopy(ptr_add(acc, i * NR + v * W),
                                              ptr_add(op, i * k_all + v * W), VB)
                            else:
                                for i in range(mr):
                                    for j in range(nr):
                                        acc[i * NR + j] = op[i * k_all + j]
                        for t in range(t0, t1):
                            # rows past mr repeat the last valid row: same loads, not stored
                            for i in range(MR):
                                o = offs[p0 + min(i, mr - 1), t]
                                rows[i] = zp if o < 0 else ptr_add(ap, o)
                            bt = ptr_add(bp, t * cg * NR)
                            # KU channels per trip: the loop's own instructions (a
                            # pointer increment per row) are paid once per KU steps,
                            # or they and not the FMAs would bound the issue rate
                            c = c0
                            while c + KU <= c1:
                                bc = ptr_add(bt, c * NR)
                                # constant trip counts: LLVM unrolls these loops and
                                # keeps the accumulators in registers
                                for u in range(KU):
                                    for i in range(MR):
                                        x = rows[i][c + u]
                                        for v in range(NVEC):
                                            vfma(ptr_add(acc, (i * NVEC + v) * W), x,
                                                 ptr_add(bc, u * NR + v * W), VB)
                                c += KU
                            for c in range(c, c1):
                                bc = ptr_add(bt, c * NR)
                                for i in range(MR):
                                    x = rows[i][c]
                                    for v in range(NVEC):
                                        vfma(ptr_add(acc, (i * NVEC + v) * W), x,
                                             ptr_add(bc, v * W), VB)
                        if full:
                            for i in range(MR):
                                for v in range(NVEC):
                                    vcopy(ptr_add(op, i * k_all + v * W),
                                          ptr_add(acc, i * NR + v * W), VB)
                        else:
                            for i in range(mr):
                                for j in range(nr):
                                    op[i * k_all + j] = acc[i * NR + j]
            chunk_done(work, lo, hi)

    return conv_gemm_jobs


#: The fewest MR-pixel tiles a thread's chunk holds: a chunk streams each
#: KC x NC block of packed weights from L3 once and reuses it from L2 for
#: every tile it holds, so one-tile chunks (25 of them on a 14x14 layer)
#: would make the weights' traffic, not the FMAs, set the pace.
MIN_TILES = 4


@functools.lru_cache(maxsize=None)
def _compiled(mr: int, nvec: int, vbytes: int) -> Callable:
    # one dispatcher pair per tile, shared by every dtype and every caller
    return _build(mr, nvec, vbytes)


@dataclass(frozen=True)
class GemmKernel:
    """The configured GEMM micro-kernel for one dtype: what operators use.

    ``pack`` lays the weights out for this tile, ``k_blocks`` cuts the
    reduction for this cache blocking, ``run`` computes; all three must come
    from the same :class:`GemmKernel` (the packing depends on NR).
    """

    config: KernelConfig
    dtype: np.dtype

    @property
    def mr(self) -> int:
        return self.config.mr

    @property
    def nr(self) -> int:
        return self.config.nr(self.dtype)

    @property
    def nc_panels(self) -> int:
        """NR-panels per output-channel cache block."""
        return max(1, self.config.nc // self.nr)

    def pack(self, weight: np.ndarray, groups: int) -> np.ndarray:
        """OIHW weights -> this tile's packed panels (see :func:`pack_weights`)."""
        return pack_weights(weight, groups, self.dtype, self.nr)

    def k_blocks(self, taps: int, cg: int) -> np.ndarray:
        """Reduction blocks of about KC elements (see :func:`k_blocks`)."""
        return k_blocks(taps, cg, self.config.kc)

    def run(self, a: np.ndarray, zero: np.ndarray, offs: np.ndarray, nimg: int,
            img_stride: int, groups: int, cg: int, kg: int, packed: np.ndarray,
            kblocks: np.ndarray, out: np.ndarray) -> None:
        """``out[n, p, g*kg + k] = sum_{t,c} a[n*img_stride + offs[p,t] + g*cg + c]
        * W[g, t, c, k]`` for all images, pixels, groups and output channels.

        ``a``, ``zero``, ``packed`` and ``out`` are flat arrays of this
        kernel's dtype; ``offs`` is ``(M, T)`` int64 (``-1`` reads ``zero``);
        ``packed`` comes from :meth:`pack`, ``kblocks`` from :meth:`k_blocks`.
        The caller guarantees the sizes (every offset + ``cg*groups`` inside
        ``a``, ``zero`` of ``groups*cg`` elements, ``out`` of
        ``nimg*M*groups*kg``): the kernel does not check them.
        Output-pixel tiles are spread over ``numba.get_num_threads()`` threads.
        """
        if _bounds.enabled():
            _check_bounds(a, zero, offs, nimg, img_stride, groups, cg, kg, packed, kblocks, out, self.nr)
        jobs = _compiled(self.config.mr, self.config.nr_vectors, self.config.vector_bytes)
        panels = -(-kg // self.nr)
        nblocks = -(-panels // self.nc_panels)  # as the kernel cuts them
        njobs = groups * nblocks * nimg * (-(-offs.shape[0] // self.config.mr))
        # the work as the kernel does it, in whole NR-wide panels: a grouped layer with Kg < NR
        # (32 groups of 4 channels) costs NR/Kg times its useful flops, and counted by those,
        # the grain kept a 3x3 128->128 32-group 28x28 layer on one thread, where two ran it
        # 1.85-1.89x faster (indirect 0.62 -> 0.33 ms, gemm-direct 2.73 -> 1.47 ms; Zen 3 VM)
        parallel_for(jobs, njobs, a, zero, offs, nimg, img_stride, groups, cg, kg,
                     packed, kblocks, self.nc_panels, out, min_chunk=MIN_TILES,
                     flops=2.0 * nimg * offs.size * cg * panels * self.nr * groups)


def _check_bounds(a: np.ndarray, zero: np.ndarray, offs: np.ndarray, nimg: int, img_stride: int,
                  groups: int, cg: int, kg: int, packed: np.ndarray, kblocks: np.ndarray,
                  out: np.ndarray, nr: int) -> None:
    """What the micro-kernel touches through pointers, against the array sizes
    (bounds-checked mode only, see :mod:`._bounds`)."""
    m_pix, taps = offs.shape
    if kblocks.size and (kblocks[:, 0].min() < 0 or kblocks[:, 1].max() > taps
                         or kblocks[:, 2].min() < 0 or kblocks[:, 3].max() > cg):
        raise IndexError(f"conv_gemm: reduction blocks {kblocks.tolist()} leave {taps} taps x {cg} channels")
    # row (n, p, t) of group g reads a[n*img_stride + offs[p, t] + g*cg + c], c < cg
    _bounds.require_offsets("conv_gemm", offs, a, nimg, img_stride, groups * cg, zero)
    _bounds.require("conv_gemm", "the packed weights", packed, 0, groups * -(-kg // nr) * taps * cg * nr - 1)
    _bounds.require("conv_gemm", "the output", out, 0, nimg * m_pix * groups * kg - 1)


def gemm_kernel(dtype: np.dtype | str, config: KernelConfig | None = None) -> GemmKernel:
    """The GEMM kernel for ``dtype`` under ``config`` (default: the active one)."""
    return GemmKernel(config or active_config(), np.dtype(dtype))


def jobs_for(config: KernelConfig) -> Callable:
    """The jitted job function of ``config`` (for tests and assembly checks)."""
    return _compiled(config.mr, config.nr_vectors, config.vector_bytes)


def pack_weights(weight: np.ndarray, groups: int, dtype: np.dtype | str, nr: int) -> np.ndarray:
    """OIHW weights -> flat NR-wide panels ``(G, ceil(Kg/NR), R*S, Cg, NR)``.

    Output channels past ``Kg`` in the last panel are zero, so the kernel
    always computes full panels and stores only the valid columns.
    """
    k, cg, r, s = weight.shape
    kg = k // groups
    nnb = -(-kg // nr)
    w = np.zeros((groups, nnb * nr, r * s, cg), dtype=dtype)
    w[:, :kg] = weight.reshape(groups, kg, cg, r * s).transpose(0, 1, 3, 2)
    # (G, nnb, NR, T, Cg) -> (G, nnb, T, Cg, NR)
    w = w.reshape(groups, nnb, nr, r * s, cg).transpose(0, 1, 3, 4, 2)
    out = aligned_empty(w.size, w.dtype)
    out.reshape(w.shape)[...] = w  # 64-byte aligned: see .aligned
    return out


def k_blocks(taps: int, cg: int, kc: int) -> np.ndarray:
    """Reduction blocks ``(t0, t1, c0, c1)`` of about ``kc`` elements each.

    Few channels: whole taps are grouped; many channels: each tap is split
    into equal channel chunks. Blocks are balanced so none is tiny.
    """
    blocks = []
    if cg >= kc:
        nch = -(-cg // kc)
        step = -(-cg // nch)
        for t in range(taps):
            for c0 in range(0, cg, step):
                blocks.append((t, t + 1, c0, min(c0 + step, cg)))
    else:
        ntb = -(-taps // max(1, kc // cg))
        step = -(-taps // ntb)
        for t0 in range(0, taps, step):
            blocks.append((t0, min(t0 + step, taps), 0, cg))
    return np.asarray(blocks, dtype=np.int64).reshape(-1, 4)


class PackedGemm:
    """``A @ B`` through the convolution micro-kernel (B packed once).

    The plain-GEMM view of :func:`conv_gemm`: ``T = 1`` and row ``p`` of A is
    at offset ``p * K``. Used to test the micro-kernel against numpy and to
    compare it with BLAS.
    """

    def __init__(self, b: np.ndarray, config: KernelConfig | None = None) -> None:
        kdim, n = b.shape
        self.dtype = b.dtype
        self.kdim, self.n = kdim, n
        self.kernel = gemm_kernel(b.dtype, config)
        # (K, N) seen as OIHW weights (N, K, 1, 1)
        self.packed = self.kernel.pack(np.ascontiguousarray(b.T).reshape(n, kdim, 1, 1), 1)
        self.kblocks = self.kernel.k_blocks(1, kdim)
        self.zero = np.zeros(kdim, b.dtype)
        self._offs: dict[int, np.ndarray] = {}

    def __call__(self, a: np.ndarray) -> np.ndarray:
        m = a.shape[0]
        offs = self._offs.get(m)
        if offs is None:
            offs = self._offs[m] = (np.arange(m, dtype=np.int64) * self.kdim).reshape(m, 1)
        out = np.empty((m, self.n), self.dtype)
        self.kernel.run(np.ascontiguousarray(a, self.dtype).reshape(-1), self.zero, offs, 1, 0, 1,
                        self.kdim, self.n, self.packed, self.kblocks, out.reshape(-1))
        return out


def gemm(a: np.ndarray, b: np.ndarray, config: KernelConfig | None = None) -> np.ndarray:
    """``a @ b`` (2-D, float32 or float64) with the convbench micro-kernel."""
    return PackedGemm(np.ascontiguousarray(b), config)(a)
