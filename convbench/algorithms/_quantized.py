"""The u8s8 (8-bit) operators of ``indirect`` and ``im2col-numba`` (:mod:`convbench.quant`).

The same two algorithms as in float, on the 8-bit kernels: ``indirect`` runs
the u8s8 GEMM micro-kernel (:mod:`convbench.kernels.qgemm`) through the
indirection buffer, whose padding taps point at a vector of ``x_zero``
bytes; ``im2col-numba`` copies the im2row matrix (padding written as
``x_zero``) and runs the SAME micro-kernel on its rows, the reduction of a
row being one "tap" of ``R*S*Cg`` channels. Depthwise layers run the u8s8
depthwise kernel (:mod:`convbench.kernels.qdepthwise`) through the buffer
(``indirect``) or over the tap-major copy (``im2col-numba``), as the float
paths do. Each output channel starts from its zero-point correction and is
requantized in float32 (:mod:`convbench.kernels.requant`).

Phases as in float: ``indirect`` is ``gemm``; ``im2col-numba`` is ``pack``
(the copy; none for a 1x1 stride-1 layer) then ``gemm``; NCHW adds its layout
conversions (``pack`` in front, ``transform_out`` behind).
"""

from __future__ import annotations

import numpy as np

from ..algorithm import Array, ConvCall
from ..kernels.aligned import aligned_empty
from ..kernels.im2row import im2row, tap_major_copy
from ..kernels.indirection import indirection_buffer
from ..kernels.qdepthwise import pack_qdepthwise, qdepthwise
from ..kernels.qgemm import qgemm_kernel
from ..kernels.requant import correction, multiplier, too_many_terms
from ..layouts import adapt
from ..phases import phased
from ..quant import QuantizedWeight
from ..spec import ConvSpec


def unsupported(spec: ConvSpec) -> str | None:
    """Why the u8s8 kernels cannot run ``spec`` (an int32 accumulator that could overflow), or ``None``."""
    return too_many_terms(spec.channels_per_group * spec.kernel_h * spec.kernel_w)


def scratch_bytes(spec: ConvSpec) -> int:
    """Extra memory of a u8s8 call beyond the float path's formula (itemsize 1): the
    depthwise kernel's int32 row of output channels, for its scalar channels."""
    return 4 * spec.out_channels if spec.is_depthwise else 0


def _zero_point(spec: ConvSpec, qw: QuantizedWeight) -> np.ndarray:
    """The vector padding taps read: ``x_zero`` in every channel (the real value 0), and 3
    more bytes (the GEMM kernel reads a row's partial last quad as one word)."""
    return np.full(spec.in_channels + 3, qw.x_zero, np.uint8)


def indirect(spec: ConvSpec, qw: QuantizedWeight) -> ConvCall:
    """``indirect`` on a u8s8 layer (see the module docstring)."""
    offs = indirection_buffer(spec)
    zero = _zero_point(spec, qw)
    corr, mult, y_zero = correction(qw), multiplier(qw), qw.y_zero
    n, c = spec.batch, spec.in_channels
    img = spec.height * spec.width * c
    shape = (n, spec.output_height, spec.output_width, spec.out_channels)

    if spec.is_depthwise:
        wpk = pack_qdepthwise(qw.weight)
        mult_k = spec.out_channels // c

        def call(x: Array) -> Array:
            out = aligned_empty(shape, np.uint8)
            qdepthwise(x.reshape(-1), zero, offs, n, img, c, mult_k, wpk, corr, mult, y_zero, out.reshape(-1))
            return out

        return adapt(phased(("gemm", call)), spec.layout, "nhwc")

    g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
    kernel = qgemm_kernel()  # the machine's configured u8s8 tile (kernels/quant_configs.py)
    packed = kernel.pack(qw.weight, g)

    def call(x: Array) -> Array:  # noqa: F811
        out = aligned_empty(shape, np.uint8)
        kernel.run(x.reshape(-1), zero, offs, n, img, g, cg, kg, packed, corr, mult, y_zero, out.reshape(-1))
        return out

    return adapt(phased(("gemm", call)), spec.layout, "nhwc")


def im2col_numba(spec: ConvSpec, qw: QuantizedWeight) -> ConvCall:
    """``im2col-numba`` on a u8s8 layer (see the module docstring)."""
    if spec.is_depthwise:
        return adapt(_depthwise_copy(spec, qw), spec.layout, "nhwc")
    g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
    n, c = spec.batch, spec.in_channels
    oh, ow = spec.output_height, spec.output_width
    m = oh * ow
    taps = spec.kernel_h * spec.kernel_w
    row = taps * c  # one im2row row: G groups of (R*S*Cg)
    kernel = qgemm_kernel()  # the same configured tile as indirect
    packed = kernel.pack(qw.weight, g, merge_taps=True)  # one "tap" of R*S*Cg channels per group
    corr, mult, y_zero, x_zero = correction(qw), multiplier(qw), qw.y_zero, qw.x_zero
    offs = (np.arange(m, dtype=np.int64) * row).reshape(m, 1)
    zero = np.full(1, x_zero, np.uint8)  # never read: im2row rows have no padding taps
    shape = (n, oh, ow, spec.out_channels)
    geometry = (*spec.kernel, *spec.stride, *spec.dilation, spec.pad_top, spec.pad_left, oh, ow)

    def pack(x: Array) -> Array:
        col = aligned_empty((n * m, row), np.uint8)
        im2row(x, *geometry, g, col, x_zero)
        return col

    def gemm(col: Array) -> Array:  # the im2row matrix, or a 1x1 layer's input as it lies
        out = aligned_empty(shape, np.uint8)
        kernel.run(col.reshape(-1), zero, offs, n, m * row, g, taps * cg, kg, packed, corr, mult, y_zero,
                   out.reshape(-1))
        return out

    call = phased(("gemm", gemm)) if spec.is_pointwise else phased(("pack", pack), ("gemm", gemm))
    return adapt(call, spec.layout, "nhwc")


def _depthwise_copy(spec: ConvSpec, qw: QuantizedWeight) -> ConvCall:
    """A depthwise NHWC layer: the tap-major copy, padded with ``x_zero`` (``pack``), then
    the u8s8 depthwise kernel (``gemm``) reading pixel ``p``'s tap ``t`` at ``col[t, n, p]``."""
    n, c, k = spec.batch, spec.in_channels, spec.out_channels
    m = spec.output_height * spec.output_width
    taps = spec.kernel_h * spec.kernel_w
    wpk = pack_qdepthwise(qw.weight)
    corr, mult, y_zero = correction(qw), multiplier(qw), qw.y_zero
    # col is (T, N, M, C): image n starts n*M*C in, tap t of pixel p at t*N*M*C + p*C
    offs = (np.arange(taps, dtype=np.int64)[None, :] * (n * m * c)
            + np.arange(m, dtype=np.int64)[:, None] * c)
    zero = _zero_point(spec, qw)  # never read: the matrix has no padding taps
    shape = (n, spec.output_height, spec.output_width, k)

    def gemm(col: Array) -> Array:
        out = aligned_empty(shape, np.uint8)
        qdepthwise(col.reshape(-1), zero, offs, n, m * c, c, k // c, wpk, corr, mult, y_zero, out.reshape(-1))
        return out

    return phased(("pack", tap_major_copy(spec, qw.x_zero)), ("gemm", gemm))
