"""``naive``: the seven-loop direct convolution, compiled with numba.

Supports every spec, float and ``u8s8`` (:mod:`convbench.quant`: int32
accumulation from a per-channel zero-point correction made in ``prepare``,
float32 requantization). Computes in NHWC (weights repacked so the
innermost loop runs over output channels); NCHW inputs are converted inside
the call.

Phases: ``gemm`` (the direct loops are the multiply-accumulate core); NCHW adds
its layout conversions (``pack`` in front, ``transform_out`` behind).

Threads (issue 31): output rows (``N * OH`` jobs) are taken by the kernels'
pool (:mod:`convbench.kernels._parallel`), a step on one thread per grain of
work (:mod:`convbench.kernels.grain`). It never lost its second core: the
1.00x issue 31 saw on a 1x1 512->512 14x14 layer (14 rows of 7 MFLOP each)
came in the same minute as indirect's 1.05x and oneDNN's 1.07x on that
layer, a contended stretch of that run; the phases at 1 and 2 threads show
one step that splits over rows like the others. The NCHW conversions are
numpy copies on one thread.

The output is 64-byte aligned (:func:`~convbench.kernels.aligned.aligned_empty`):
each output pixel's row is the accumulator the innermost loop stores to,
and where ``np.empty`` left it split across cache lines the same call ran
up to twice as slow, by where the allocator put it (a 5x5 64->64 28x28
layer: 4.3 ms at one thread, 4.1 or 2.2 ms at two, in one process), which
read as "naive does not scale" on some layers and 4x on others.
"""

from __future__ import annotations

import numpy as np

from ..kernels.aligned import aligned_empty
from ..kernels.direct import direct_nhwc, direct_u8_nhwc, pack_direct, u8_start
from ..layouts import adapt, conversion_bytes
from ..phases import phased
from ..registry import register
from ..spec import ConvSpec
from ..algorithm import Algorithm, Array, ConvCall
from ..quant import QuantizedWeight


@register
class Naive(Algorithm):
    """Seven nested loops (n, oh, ow, r, s, c, k), numba-compiled, NHWC."""

    name = "naive"
    description = "seven-loop direct convolution in numba (NHWC, output channels innermost)"
    natural_layout = "nhwc"
    constraints = "none"
    dtypes = ("float32", "float64", "u8s8")

    def implementation(self, spec: ConvSpec) -> str:
        return "numba:direct-u8s8" if spec.is_quantized else "numba:direct"

    def workspace_bytes(self, spec: ConvSpec) -> int:
        return conversion_bytes(spec, "nhwc")

    def prepare(self, spec: ConvSpec, weight: Array | QuantizedWeight) -> ConvCall:
        if isinstance(weight, QuantizedWeight):
            return self._prepare_u8(spec, weight)
        w = pack_direct(np.asarray(weight), spec.groups, spec.np_dtype)
        shape = (spec.batch, spec.output_height, spec.output_width, spec.out_channels)
        geometry = (*spec.stride, *spec.dilation, spec.pad_top, spec.pad_left)
        dtype = spec.np_dtype

        def call(x: Array) -> Array:
            out = aligned_empty(shape, dtype)
            direct_nhwc(x, w, *geometry, out)  # guarded: C-contiguous, spec dtype
            return out

        return adapt(phased(("gemm", call)), spec.layout, "nhwc")

    def _prepare_u8(self, spec: ConvSpec, qw: QuantizedWeight) -> ConvCall:
        w = pack_direct(qw.weight, spec.groups, np.int8)
        acc0 = u8_start(qw.weight, qw.bias, qw.x_zero)
        mult = qw.multiplier()
        shape = (spec.batch, spec.output_height, spec.output_width, spec.out_channels)
        geometry = (*spec.stride, *spec.dilation, spec.pad_top, spec.pad_left)
        x_zero, y_zero = qw.x_zero, qw.y_zero

        def call(x: Array) -> Array:
            out = aligned_empty(shape, np.uint8)
            direct_u8_nhwc(x, w, x_zero, acc0, mult, y_zero, *geometry, out)
            return out

        return adapt(phased(("gemm", call)), spec.layout, "nhwc")
