"""``naive``: the seven-loop direct convolution, compiled with numba.

Supports every spec. Computes in NHWC (weights repacked so the innermost
loop runs over output channels); NCHW inputs are converted inside the call.
"""

from __future__ import annotations

import numpy as np

from ..kernels.direct import direct_nhwc, pack_direct
from ..layouts import adapt, conversion_bytes
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

    def workspace_bytes(self, spec: ConvSpec) -> int:
        return conversion_bytes(spec, "nhwc")

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        w = pack_direct(np.asarray(weight), spec.groups, spec.np_dtype)
        shape = (spec.batch, spec.output_height, spec.output_width, spec.out_channels)
        geometry = (*spec.stride, *spec.dilation, spec.pad_top, spec.pad_left)
        dtype = spec.np_dtype

        def call(x: Array) -> Array:
            out = np.empty(shape, dtype)
            direct_nhwc(np.ascontiguousarray(x, dtype), w, *geometry, out)
            return out

        return adapt(call, spec.layout, "nhwc")
