"""The one GEMM micro-kernel shared by ``indirect`` and ``im2col-numba``.

Shape of the computation (per group ``g``)::

    out[n, p, g*Kg + k] = sum_{t < T, c < Cg} A(n, p, t)[c] * W[g, t, c, k]

where ``A(n, p, t)`` is a *row pointer*: for Indirect Convolution it is the
input pixel that tap ``t`` of output pixel ``p`` reads (or a zero vector for
a padding tap), for im2col it is row ``p`` of the im2col matrix (``T == 1``).
Both reach the kernel the same way, through a table ``offs[p, t]`` of element
offsets (``-1`` = the zero vector), so the micro-kernel, the packing and the
blocking are identical and only the algorithm differs.

The micro-kernel computes an ``MR x NR`` tile (``MR = 5`` rows; ``NR`` = 16
float32 or 8 float64 columns, i.e. two AVX2 registers per row) with the
accumulators in a stack allocation that LLVM keeps in registers: the inner
loop is 10 broadcast-FMAs on ymm registers (see ``tests/test_kernels.py``
for the assembly check).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import _bounds
from ._intrinsics import data_ptr, ptr_add, stack_alloc, vec_width
from ._parallel import parallel_for

#: Rows (output pixels) of one micro-kernel tile. 5x16 float32 measured
#: fastest on Zen 3 (10 ymm accumulators + 2 B vectors + broadcasts fit the
#: 16 ymm registers; 6x16 spills).
MR = 5
#: Largest NR of any dtype (float32: 64 bytes / 4); sizes the stack tile.
NR_MAX = 16
ACC_SIZE = MR * NR_MAX

#: Cache blocking (elements of the reduction dimension per block, and output
#: channels per block). An MR x KC A-tile (20 KiB) stays in L1; the KC x NC
#: block of packed weights mostly in L2 (512 KiB/core on Zen 3). KC = 1024
#: measured a few percent faster than 256 or 512 on the ResNet 3x3 layers
#: (fewer passes over the output, fewer row-pointer reloads).
KC = 1024
NC = 256


def nr_for(dtype: np.dtype | str) -> int:
    """Columns of the micro-kernel tile for ``dtype`` (16 float32, 8 float64)."""
    return 64 // np.dtype(dtype).itemsize


@njit(nogil=True, fastmath=True, cache=True)
def ukernel(a, zero, offs, p0, mr, a_off, t0, t1, c0, c1, cg, chan, b, b_off,
            out, o_off, ldo, nr, accumulate):  # pragma: no cover - compiled
    """One MR x NR output tile: rows ``p0 .. p0+mr`` of ``offs``, reduction
    over taps ``t0..t1`` and channels ``c0..c1``, B panel at ``b[b_off:]``
    laid out ``(T, cg, NR)``; writes (or adds to, if ``accumulate``) the
    ``mr x nr`` corner of ``out[o_off + i*ldo + j]``."""
    NR = vec_width(a)
    acc = stack_alloc(a, ACC_SIZE)
    for k in range(MR * NR):
        acc[k] = 0.0
    op = ptr_add(data_ptr(out), o_off)
    if accumulate:
        for i in range(mr):
            for j in range(nr):
                acc[i * NR + j] = op[i * ldo + j]
    ap = ptr_add(data_ptr(a), a_off + chan)
    zp = ptr_add(data_ptr(zero), chan)
    bp = ptr_add(data_ptr(b), b_off)
    # Rows past mr repeat the last valid row: same loads, results not stored.
    q0 = p0
    q1 = p0 + min(1, mr - 1)
    q2 = p0 + min(2, mr - 1)
    q3 = p0 + min(3, mr - 1)
    q4 = p0 + min(4, mr - 1)
    for t in range(t0, t1):
        o = offs[q0, t]
        r0 = zp if o < 0 else ptr_add(ap, o)
        o = offs[q1, t]
        r1 = zp if o < 0 else ptr_add(ap, o)
        o = offs[q2, t]
        r2 = zp if o < 0 else ptr_add(ap, o)
        o = offs[q3, t]
        r3 = zp if o < 0 else ptr_add(ap, o)
        o = offs[q4, t]
        r4 = zp if o < 0 else ptr_add(ap, o)
        bt = ptr_add(bp, t * cg * NR)
        for c in range(c0, c1):
            bc = ptr_add(bt, c * NR)
            # All five broadcasts first, then one constant-length column loop:
            # this is the form LLVM turns into 10 register-resident ymm FMAs.
            x0 = r0[c]
            x1 = r1[c]
            x2 = r2[c]
            x3 = r3[c]
            x4 = r4[c]
            for j in range(NR):
                bj = bc[j]
                acc[j] += x0 * bj
                acc[NR + j] += x1 * bj
                acc[2 * NR + j] += x2 * bj
                acc[3 * NR + j] += x3 * bj
                acc[4 * NR + j] += x4 * bj
    for i in range(mr):
        for j in range(nr):
            op[i * ldo + j] = acc[i * NR + j]


@njit(nogil=True, fastmath=True, cache=True)
def conv_gemm_jobs(lo, hi, a, zero, offs, nimg, img_stride, groups, cg, kg, packed,
                   kblocks, nc_panels, out):  # pragma: no cover - compiled
    """Jobs ``lo..hi`` of :func:`conv_gemm`; a job is one MR-pixel tile of one
    image and group. Loop order per thread: reduction block, output-channel
    block, tile, NR-panel: a tile's A rows stay in L1 across the panels and
    the KC x NC block of packed weights stays in this core's L2."""
    m_pix, taps = offs.shape
    NR = vec_width(a)
    nnb = (kg + NR - 1) // NR
    k_all = groups * kg
    tpi = (m_pix + MR - 1) // MR
    ntiles = nimg * tpi
    panel = taps * cg * NR
    for kb in range(kblocks.shape[0]):
        t0 = kblocks[kb, 0]
        t1 = kblocks[kb, 1]
        c0 = kblocks[kb, 2]
        c1 = kblocks[kb, 3]
        accumulate = kb > 0
        for nb0 in range(0, nnb, nc_panels):
            nb1 = min(nb0 + nc_panels, nnb)
            for job in range(lo, hi):
                g = job // ntiles
                tile = job - g * ntiles
                n = tile // tpi
                p0 = (tile - n * tpi) * MR
                mr = min(MR, m_pix - p0)
                o_row = (n * m_pix + p0) * k_all + g * kg
                for nb in range(nb0, nb1):
                    nr = min(NR, kg - nb * NR)
                    ukernel(a, zero, offs, p0, mr, n * img_stride, t0, t1, c0, c1,
                            cg, g * cg, packed, (g * nnb + nb) * panel,
                            out, o_row + nb * NR, k_all, nr, accumulate)


def conv_gemm(a: np.ndarray, zero: np.ndarray, offs: np.ndarray, nimg: int, img_stride: int,
              groups: int, cg: int, kg: int, packed: np.ndarray, kblocks: np.ndarray,
              nc_panels: int, out: np.ndarray) -> None:
    """``out[n, p, g*kg + k] = sum_{t,c} a[n*img_stride + offs[p,t] + g*cg + c]
    * W[g, t, c, k]`` for all images, pixels, groups and output channels.

    ``a``, ``zero``, ``packed`` and ``out`` are flat; ``offs`` is ``(M, T)``
    (``-1`` reads ``zero``); ``packed`` is ``(G, ceil(kg/NR), T, cg, NR)``
    from :func:`pack_weights`; ``kblocks`` rows are ``(t0, t1, c0, c1)``
    reduction blocks in order. Output-pixel tiles are split over
    ``numba.get_num_threads()`` threads.
    """
    if _bounds.enabled():
        _check_bounds(a, zero, offs, nimg, img_stride, groups, cg, kg, packed, kblocks, out)
    njobs = groups * nimg * (-(-offs.shape[0] // MR))
    parallel_for(conv_gemm_jobs, njobs, a, zero, offs, nimg, img_stride, groups, cg, kg,
                 packed, kblocks, nc_panels, out)


def _check_bounds(a: np.ndarray, zero: np.ndarray, offs: np.ndarray, nimg: int, img_stride: int,
                  groups: int, cg: int, kg: int, packed: np.ndarray, kblocks: np.ndarray,
                  out: np.ndarray) -> None:
    """What :func:`ukernel` touches through pointers, against the array sizes
    (bounds-checked mode only, see :mod:`._bounds`)."""
    m_pix, taps = offs.shape
    nr = nr_for(a.dtype)  # the kernel's NR (vec_width)
    if kblocks.size and (kblocks[:, 0].min() < 0 or kblocks[:, 1].max() > taps
                         or kblocks[:, 2].min() < 0 or kblocks[:, 3].max() > cg):
        raise IndexError(f"conv_gemm: reduction blocks {kblocks.tolist()} leave {taps} taps x {cg} channels")
    # row (n, p, t) of group g reads a[n*img_stride + offs[p, t] + g*cg + c], c < cg
    _bounds.require_offsets("conv_gemm", offs, a, nimg, img_stride, groups * cg, zero)
    _bounds.require("conv_gemm", "the packed weights", packed, 0,
                    groups * -(-kg // nr) * taps * cg * nr - 1)
    _bounds.require("conv_gemm", "the output", out, 0, nimg * m_pix * groups * kg - 1)


def pack_weights(weight: np.ndarray, groups: int, dtype: np.dtype | str) -> np.ndarray:
    """OIHW weights -> flat NR-wide panels ``(G, ceil(Kg/NR), R*S, Cg, NR)``.

    Output channels past ``Kg`` in the last panel are zero, so the kernel
    always computes full panels and stores only the valid columns.
    """
    k, cg, r, s = weight.shape
    kg = k // groups
    nr = nr_for(dtype)
    nnb = -(-kg // nr)
    w = np.zeros((groups, nnb * nr, r * s, cg), dtype=dtype)
    w[:, :kg] = weight.reshape(groups, kg, cg, r * s).transpose(0, 1, 3, 2)
    # (G, nnb, NR, T, Cg) -> (G, nnb, T, Cg, NR)
    w = w.reshape(groups, nnb, nr, r * s, cg).transpose(0, 1, 3, 4, 2)
    return np.ascontiguousarray(w).reshape(-1)


def k_blocks(taps: int, cg: int, kc: int | None = None) -> np.ndarray:
    """Reduction blocks ``(t0, t1, c0, c1)`` of about ``kc`` elements each.

    Few channels: whole taps are grouped; many channels: each tap is split
    into equal channel chunks. Blocks are balanced so none is tiny.
    """
    kc = KC if kc is None else kc
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


def nc_panels_for(dtype: np.dtype | str, nc: int | None = None) -> int:
    """NR-panels per output-channel cache block (``nc`` channels, default :data:`NC`)."""
    return max(1, (NC if nc is None else nc) // nr_for(dtype))


class PackedGemm:
    """``A @ B`` through the convolution micro-kernel (B packed once).

    The plain-GEMM view of :func:`conv_gemm`: ``T = 1`` and row ``p`` of A is
    at offset ``p * K``. Used to test the micro-kernel against numpy and to
    compare it with BLAS.
    """

    def __init__(self, b: np.ndarray) -> None:
        kdim, n = b.shape
        self.dtype = b.dtype
        self.kdim, self.n = kdim, n
        # (K, N) seen as OIHW weights (N, K, 1, 1)
        self.packed = pack_weights(np.ascontiguousarray(b.T).reshape(n, kdim, 1, 1), 1, b.dtype)
        self.kblocks = k_blocks(1, kdim)
        self.zero = np.zeros(kdim, b.dtype)
        self._offs: dict[int, np.ndarray] = {}

    def __call__(self, a: np.ndarray) -> np.ndarray:
        m = a.shape[0]
        offs = self._offs.get(m)
        if offs is None:
            offs = self._offs[m] = (np.arange(m, dtype=np.int64) * self.kdim).reshape(m, 1)
        out = np.empty((m, self.n), self.dtype)
        conv_gemm(np.ascontiguousarray(a, self.dtype).reshape(-1), self.zero, offs, 1, 0, 1,
                  self.kdim, self.n, self.packed, self.kblocks,
                  nc_panels_for(self.dtype), out.reshape(-1))
        return out


def gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (2-D, float32 or float64) with the convbench micro-kernel."""
    return PackedGemm(np.ascontiguousarray(b))(a)
