"""``naive``: the seven-loop direct convolution, compiled with numba.

Supports every spec. Computes in NHWC (weights repacked so the innermost
loop runs over output channels); NCHW inputs are converted inside the call.

Phases: ``gemm`` (the direct loops are the multiply-accumulate core); NCHW adds
its layout conversions (``pack`` in front, ``transform_out`` behind).
"""

from __future__ import annotations

import numpy as np

from ..kernels.direct import direct_nhwc, pack_direct
from ..layouts import adapt, conversion_bytes
from .. import implementation as impl
from ..phases import phased
from ..registry import register
from ..spec import ConvSpec
from ..algorithm import Algorithm, Array, ConvCall


@register
class Naive(Algorithm):
    """Seven nested loops (n, oh, ow, r, s, c, k), numba-compiled, NHWC."""

    name = "naive"
    description = "seven-loop direct convolution in numba (NHWC, output channels innermost)"
    natural_layout = "nhwc"
    constraints = "none"

    def implementation(self, spec: ConvSpec) -> str:
        return "numba:direct"

    def workspace_bytes(self, spec: ConvSpec) -> int:
        return conversion_bytes(spec, "nhwc")

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        w = pack_direct(np.asarray(weight), spec.groups, spec.np_dtype)
        shape = (spec.batch, spec.output_height, spec.output_width, spec.out_channels)
        geometry = (*spec.stride, *spec.dilation, spec.pad_top, spec.pad_left)
        dtype = spec.np_dtype

        def call(x: Array) -> Array:
            out = np.empty(shape, dtype)
            direct_nhwc(x, w, *geometry, out)  # guarded: C-contiguous, spec dtype
            return out

        return adapt(phased(("gemm", call)), spec.layout, "nhwc")
