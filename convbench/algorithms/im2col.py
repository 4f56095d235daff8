"""im2col + GEMM: copy receptive fields into a matrix, then one BLAS GEMM per group.

NHWC uses im2row (an (N*OH*OW) x (G*R*S*Cg) matrix whose group slices are
multiplied by the (R*S*Cg) x Kg weights of each group); NCHW uses im2col (a (Cg*R*S) x (OH*OW) matrix per
image and group, with the weights on the left), so both layouts are native
and neither transposes its output. A 1x1, stride-1, unpadded layer skips the
copy and multiplies the input as it lies, as every framework does. The
GEMM is numpy's matmul, i.e. the machine's BLAS; a depthwise NHWC layer's
"GEMM" (one column per group) is a numpy einsum of per-pixel dot products.
"""

from __future__ import annotations

import numpy as np

from ..kernels.im2col import im2col_nchw
from ..kernels.im2row import im2row, im2row_bytes
from ..registry import register
from ..spec import ConvSpec
from ..algorithm import Algorithm, Array, ConvCall


@register
class Im2col(Algorithm):
    name = "im2col"
    description = "im2col (NCHW) / im2row (NHWC) copy in numba, then one GEMM per group through numpy/BLAS"
    natural_layout = None

    def workspace_bytes(self, spec: ConvSpec) -> int:
        extra = 0
        if spec.layout == "nhwc" and spec.groups > 1 and spec.channels_per_group > 1:
            extra = spec.output_bytes  # (G, M, Kg) product before the channel interleave
        return im2row_bytes(spec) + extra

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
        kh, kw = spec.kernel
        n, oh, ow, k = spec.batch, spec.output_height, spec.output_width, spec.out_channels
        geometry = (kh, kw, *spec.stride, *spec.dilation, spec.pad_top, spec.pad_left, oh, ow)
        dtype = spec.np_dtype
        copy = not spec.is_pointwise

        if spec.layout == "nchw":
            w_mat = np.ascontiguousarray(weight.reshape(g, kg, cg * kh * kw), dtype=dtype)

            def call(x: Array) -> Array:
                x = np.ascontiguousarray(x)
                if copy:
                    cols = np.empty((n, g, cg * kh * kw, oh * ow), dtype)
                    im2col_nchw(x, *geometry, cols)
                else:
                    cols = x.reshape(n, g, cg, oh * ow)
                return np.matmul(w_mat, cols).reshape(n, k, oh, ow)

            return call

        # (G, R*S*Cg, Kg), rows ordered (r, s, c) like im2row's columns
        w_mat = np.ascontiguousarray(
            weight.reshape(g, kg, cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(g, kh * kw * cg, kg),
            dtype=dtype,
        )
        m = n * oh * ow

        def call(x: Array) -> Array:  # noqa: F811
            x = np.ascontiguousarray(x)
            if copy:
                col = np.empty((m, g * kh * kw * cg), dtype)
                im2row(x, *geometry, g, col)
            else:
                col = x.reshape(m, g * cg)
            if cg == 1 and g > 1:
                # depthwise: G dot products of length R*S per pixel, not G one-column GEMMs;
                # einsum writes (M, G, Kg), which already is NHWC
                return np.einsum("mgt,gtj->mgj", col.reshape(m, g, -1), w_mat).reshape(n, oh, ow, k)
            # (G, M, R*S*Cg) strided view: each group's rows are a BLAS operand as they lie
            y = np.matmul(col.reshape(m, g, -1).transpose(1, 0, 2), w_mat)  # (G, M, Kg)
            if g == 1:
                return y.reshape(n, oh, ow, k)
            return np.ascontiguousarray(y.transpose(1, 0, 2)).reshape(n, oh, ow, k)

        return call
