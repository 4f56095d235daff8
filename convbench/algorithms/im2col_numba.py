"""``im2col-numba``: im2row copy in numba, then the SAME GEMM micro-kernel as
``indirect`` (:mod:`convbench.kernels.gemm`), NHWC.

This is the paper's same-kernel comparison: packing, blocking, tile and
threading are identical to ``indirect``; the A rows are contiguous rows of
the im2row matrix instead of input pixels reached through the indirection
buffer. 1x1, stride-1, unpadded layers skip the copy (the input is the
matrix). Depthwise layers (one channel a group) copy a
tap-major matrix and run the depthwise kernel ``indirect`` uses
(:mod:`convbench.kernels.depthwise`), reading its rows through a table of
offsets into that matrix: again the same kernel with an im2col copy in
front. The copy is made in bands of output rows, or of parts of one row
where a row's matrix is larger than a band
(:func:`~convbench.kernels.depthwise.im2col_depthwise`), each read by the
kernel while it is still in cache, as production im2col convolutions bound
their workspace: the whole matrix (nine times the input for a 3x3 layer)
went to memory and back, which held it at 0.2x indirect on MobileNet's
depthwise layers. Copy and kernel interleave, so that call is one step,
without a phase split. The copy alone, at about memcpy's speed (50-60 GB/s
into L2 on the Zen 4 VM), takes about as long as indirect's whole call on
those layers, so about 0.5x indirect is this path's ceiling there
(``benchmarks/kernels.py`` measures it, floor 9). (Run as C one-channel GEMMs, the dense kernel was
8-14x slower than indirect there, slower than naive: a gap that said
nothing about the algorithms.)

Phases: ``pack`` (the im2row copy; absent for a 1x1 layer) -> ``gemm``; NCHW
adds its layout conversions (``pack`` in front, ``transform_out`` behind).

``u8s8`` layers: the same copy (padding written as the zero point) and the
8-bit micro-kernel ``indirect`` uses (:mod:`convbench.algorithms._quantized`);
a u8s8 depthwise layer still copies its whole tap-major matrix, not in bands.

Threads (issue 31): the copy (output rows) and the GEMM (tiles x channel
blocks) are both on the kernels' pool, each step on one thread per grain of
work (:mod:`convbench.kernels.grain`); the depthwise path's bands are
shared out over the threads, each band copied and computed on one.
"""

from __future__ import annotations

import numba
import numpy as np

from ..kernels.aligned import aligned_empty
from ..kernels.gemm import gemm_kernel
from ..kernels.configs import active_config
from ..kernels.depthwise import band_shape, im2col_depthwise, pack_depthwise
from ..kernels.im2row import im2row, im2row_bytes
from ..layouts import adapt, conversion_bytes
from .. import implementation as impl
from ..phases import phased
from ..registry import register
from ..spec import ConvSpec
from ..algorithm import Algorithm, Array, ConvCall
from . import _quantized


@register
class Im2colNumba(Algorithm):
    """im2row (numba) + the indirect algorithm's GEMM micro-kernel (NHWC)."""

    name = "im2col-numba"
    description = "im2row copy in numba + the same numba GEMM micro-kernel as indirect (NHWC)"
    natural_layout = "nhwc"
    constraints = "none"
    dtypes = ("float32", "float64", "u8s8")

    def supports(self, spec: ConvSpec) -> str | None:
        return _quantized.unsupported(spec) if spec.is_quantized else None

    def implementation(self, spec: ConvSpec) -> str:
        return impl.numba_depthwise(spec.dtype) if spec.is_depthwise else impl.numba_gemm(spec.dtype)

    def workspace_bytes(self, spec: ConvSpec) -> int:
        m = spec.output_height * spec.output_width
        extra = conversion_bytes(spec, "nhwc") + (_quantized.scratch_bytes(spec) if spec.is_quantized else 0)
        if spec.is_depthwise:  # a band of the tap-major matrix per thread (at most), its offset tables
            taps, ow, c = spec.kernel_h * spec.kernel_w, spec.output_width, spec.in_channels
            rows, cols = band_shape(spec.output_height, ow, c, taps, spec.itemsize, active_config().dw_pixels)
            band = taps * rows * cols * c * spec.itemsize
            return numba.config.NUMBA_NUM_THREADS * band + 2 * rows * cols * taps * 8 + extra
        # im2row matrix + its row-offset table (the kernel's A-row addresses)
        return im2row_bytes(spec) + m * 8 + extra

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        if spec.is_quantized:
            return _quantized.im2col_numba(spec, weight)
        if spec.is_depthwise:
            return adapt(_depthwise(spec, weight), spec.layout, "nhwc")
        dtype = spec.np_dtype
        g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
        n, c = spec.batch, spec.in_channels
        oh, ow = spec.output_height, spec.output_width
        m = oh * ow
        taps = spec.kernel_h * spec.kernel_w
        row = taps * c  # one im2row row: G groups of (R*S*Cg)
        kernel = gemm_kernel(dtype)  # the same configured tile as indirect
        packed = kernel.pack(np.asarray(weight), g)
        # one "tap" of taps*cg channels per group: the whole im2row row segment
        kblocks = kernel.k_blocks(1, taps * cg)
        offs = (np.arange(m, dtype=np.int64) * row).reshape(m, 1)
        zero = np.zeros(1, dtype)  # never read: im2row rows have no padding taps
        shape = (n, oh, ow, spec.out_channels)
        copy = not spec.is_pointwise
        geometry = (*spec.kernel, *spec.stride, *spec.dilation, spec.pad_top, spec.pad_left, oh, ow)

        def pack(x: Array) -> Array:
            col = aligned_empty((n * m, row), dtype)
            im2row(x, *geometry, g, col)
            return col

        def gemm(col: Array) -> Array:  # the im2row matrix, or a 1x1 layer's input as it lies
            out = aligned_empty(shape, dtype)
            kernel.run(col.reshape(-1), zero, offs, n, m * row, g, taps * cg, kg, packed,
                       kblocks, out.reshape(-1))
            return out

        call = phased(("pack", pack), ("gemm", gemm)) if copy else phased(("gemm", gemm))
        return adapt(call, spec.layout, "nhwc")


def _depthwise(spec: ConvSpec, weight: Array) -> ConvCall:
    """A depthwise NHWC layer: the tap-major im2col matrix band by band, each band read by
    indirect's depthwise kernel while it is in cache (one step: copy and kernel interleave)."""
    dtype = spec.np_dtype
    wpk = pack_depthwise(np.asarray(weight), dtype)
    shape = (spec.batch, spec.output_height, spec.output_width, spec.out_channels)
    geometry = (spec.kernel, spec.stride, spec.dilation, spec.pad_top, spec.pad_left)

    def banded(x: Array) -> Array:
        out = aligned_empty(shape, dtype)
        im2col_depthwise(x, *geometry, wpk, out)
        return out

    return banded
