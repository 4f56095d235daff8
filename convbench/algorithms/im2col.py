"""im2col + GEMM: copy receptive fields into a matrix, then one BLAS GEMM per group.

Phases: ``pack`` (the im2col / im2row copy; absent when the layer skips it) -> ``gemm``.

NHWC uses im2row (an (N*OH*OW) x (G*R*S*Cg) matrix whose group slices are
multiplied by the (R*S*Cg) x Kg weights of each group); NCHW uses im2col (a (Cg*R*S) x (OH*OW) matrix per
image and group, with the weights on the left), so both layouts are native
and neither transposes its output. A 1x1, stride-1, unpadded layer skips the
copy and multiplies the input as it lies, as every framework does. The
GEMM is numpy's matmul, i.e. the machine's BLAS.

A depthwise NHWC layer (one channel per group) has no GEMM worth the name:
its matrix is laid out tap-major, ``(R*S, N*OH*OW, C)``, filled by one
numpy copy per tap, and contracted over the taps with one numpy einsum per
channel multiplier (:func:`_depthwise_nhwc`). The group-major im2row
(a 1-channel run per tap and group) followed by an einsum ran at about
0.1 GFLOP/s, 16-50x slower than the same layer in NCHW, and so inflated every
"vs baseline" speedup on depthwise layers. It runs on one thread (numpy).

The ``gemm`` step of grouped NHWC layers writes each group's product
straight into its channels of the NHWC output (a strided BLAS operand).

Threads (issue 31): the copy runs over the kernels' pool (numba), and so
does the GEMM, cut into blocks of rows or columns, one one-thread BLAS call
each, or, where ``convbench tune`` found it faster quiet and with a core
busy, handed whole to BLAS's own threads after the pool's helpers are
parked (:mod:`convbench.kernels.split_gemm` says why this is a per-machine
choice); both steps get one thread per grain of work
(:mod:`convbench.kernels.grain`). The GEMM was once one call on BLAS's own
threads without parking, which scaled 1.42x where the machine's sgemm scaled
1.9x: BLAS's worker shared the second core with the pool's helpers, still
polling after the copy. The depthwise NHWC path's copy and contraction are numpy on one thread.

No BLAS has an 8-bit GEMM: a ``u8s8`` layer is a ``skipped`` row saying so
(its ``supports``); ``im2col-numba`` runs im2row + the numba u8s8 GEMM.
"""

from __future__ import annotations

import numpy as np

from ..kernels import split_gemm
from ..kernels.im2col import im2col_nchw
from ..kernels.im2row import im2row, im2row_bytes, tap_major_copy
from .. import implementation as impl
from ..phases import phased
from ..registry import register
from ..spec import ConvSpec
from ..algorithm import Algorithm, Array, ConvCall


@register
class Im2col(Algorithm):
    name = "im2col"
    description = "im2col (NCHW) / im2row (NHWC) copy in numba, then one GEMM per group through numpy/BLAS"
    natural_layout = None
    dtypes = ("float32", "float64", "u8s8")  # u8s8 is asked so that supports() can name im2col-numba

    def supports(self, spec: ConvSpec) -> str | None:
        if spec.is_quantized:
            return ("no BLAS has an 8-bit GEMM to call; im2col-numba runs u8s8 "
                    "(im2row + the numba u8s8 GEMM micro-kernel)")
        return None

    def implementation(self, spec: ConvSpec) -> str:
        if spec.layout == "nhwc" and spec.channels_per_group == 1 and spec.groups > 1:
            return "numpy:einsum"  # depthwise NHWC: per-pixel dot products, no BLAS
        return impl.blas()

    def workspace_bytes(self, spec: ConvSpec) -> int:
        return im2row_bytes(spec)  # grouped NHWC products go straight into the output

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
        kh, kw = spec.kernel
        n, oh, ow, k = spec.batch, spec.output_height, spec.output_width, spec.out_channels
        geometry = (kh, kw, *spec.stride, *spec.dilation, spec.pad_top, spec.pad_left, oh, ow)
        dtype = spec.np_dtype
        copy = not spec.is_pointwise

        if spec.layout == "nhwc" and cg == 1 and g > 1 and copy:
            return _depthwise_nhwc(spec, weight)
        if spec.layout == "nchw":
            w_mat = np.ascontiguousarray(weight.reshape(g, kg, cg * kh * kw), dtype=dtype)

            def pack(x: Array) -> Array:
                cols = np.empty((n, g, cg * kh * kw, oh * ow), dtype)
                im2col_nchw(np.ascontiguousarray(x), *geometry, cols)
                return cols

            def gemm(cols: Array) -> Array:
                y = np.empty((n, k, oh, ow), dtype)
                split_gemm.matmul(w_mat, cols.reshape(n * g, -1, oh * ow), y.reshape(n * g, kg, oh * ow))
                return y

            # a pointwise layer's input already is the (N, G, Cg, OH*OW) matrix
            return phased(("pack", pack), ("gemm", gemm)) if copy else phased(("gemm", gemm))

        # (G, R*S*Cg, Kg), rows ordered (r, s, c) like im2row's columns
        w_mat = np.ascontiguousarray(
            weight.reshape(g, kg, cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(g, kh * kw * cg, kg),
            dtype=dtype,
        )
        m = n * oh * ow

        def pack(x: Array) -> Array:
            col = np.empty((m, g * kh * kw * cg), dtype)
            im2row(np.ascontiguousarray(x), *geometry, g, col)
            return col

        def gemm(col: Array) -> Array:
            col = col.reshape(m, -1)  # a view: the matrix, or the pointwise input as it lies
            if cg == 1 and g > 1:
                # depthwise: G dot products of length R*S per pixel, not G one-column GEMMs;
                # einsum writes (M, G, Kg), which already is NHWC
                return np.einsum("mgt,gtj->mgj", col.reshape(m, g, -1), w_mat).reshape(n, oh, ow, k)
            # (G, M, R*S*Cg) strided view: each group's rows are a BLAS operand as they lie,
            # and each group's (M, Kg) slice of the NHWC output is one too
            y = np.empty((m, g, kg), dtype)
            split_gemm.matmul(col.reshape(m, g, -1).transpose(1, 0, 2), w_mat, y.transpose(1, 0, 2))
            return y.reshape(n, oh, ow, k)

        return phased(("pack", pack), ("gemm", gemm)) if copy else phased(("gemm", gemm))


def _depthwise_nhwc(spec: ConvSpec, weight: Array) -> ConvCall:
    """im2col + a contraction over taps for a depthwise (or channel-multiplier) NHWC layer.

    The matrix ``col`` is ``(R*S, N, OH, OW, G)``, the tap-major copy
    (:func:`convbench.kernels.im2row.tap_major_copy`). Output channel
    ``g*Kg + j`` is ``sum_t col[t, .., g] * w[g, j, t]``.
    Phases: ``pack`` (the tap-major copy) -> ``gemm`` (the contraction over taps).
    """
    g, kg = spec.groups, spec.out_channels_per_group
    kh, kw = spec.kernel
    n, oh, ow, k = spec.batch, spec.output_height, spec.output_width, spec.out_channels
    dtype = spec.np_dtype
    n_taps = kh * kw
    # (R*S, G, Kg): tap-major like the matrix
    w_taps = np.ascontiguousarray(weight.reshape(g, kg, kh, kw).transpose(2, 3, 0, 1).reshape(n_taps, g, kg),
                                  dtype=dtype)
    m = n * oh * ow
    pack = tap_major_copy(spec)

    def gemm(col: Array) -> Array:
        rows = col.reshape(n_taps, m, g)
        y = np.empty((m, g, kg), dtype)
        for j in range(kg):
            # numpy's two-operand einsum contracts this at memory speed; R*S
            # multiply-adds of (M, G) blocks ran several times slower here
            np.einsum("tmg,tg->mg", rows, w_taps[:, :, j], out=y[:, :, j])
        return y.reshape(n, oh, ow, k)

    return phased(("pack", pack), ("gemm", gemm))
