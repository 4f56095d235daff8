"""GEMM-direct: the convolution as R*S GEMMs, one per kernel tap, no im2col matrix.

Each tap (r, s) multiplies a shifted window of the input by the (Cg, Kg)
slice ``w[:, :, r, s]`` and adds the product into the output. To make every
tap's A operand a plain window, the padded input is split once into
``stride_h * stride_w`` phase planes (space-to-depth): tap (r, s) then reads
plane ``(r*dh % sh, s*dw % sw)`` shifted by ``(r*dh // sh, s*dw // sw)``
with unit stride. That copy is about the size of the input, against ``R*S``
times the input for im2col. A 1x1, stride-1, unpadded layer is one GEMM on
the input as it lies.

The GEMMs run on the numba micro-kernel that ``indirect`` and
``im2col-numba`` share (:mod:`convbench.kernels.gemm`), with one reduction
block per tap: the kernel adds one tap's product into a chunk's output tiles,
then the next tap's, so the output is read and written once a tap, as R*S
separate GEMMs accumulate it, where ``indirect`` keeps a tile's sums in
registers across taps. The kernel reads each output pixel's window through
its row-offset table (the planes hold the padding, so no row reads the zero
vector), and writes the output in place: no crop.

A depthwise layer's taps are no GEMMs but one product per channel: they run
as one compiled pass over every tap's window
(:mod:`convbench.kernels.window_depthwise`, whose docstring says why not numpy),
over whole plane rows (``Wq`` wide, the extra columns cropped).

Phases: ``pack`` (the phase-split padded copy; absent for a 1x1 layer) ->
``gemm`` (the R*S tap passes).

Threads (issue 31): the taps were one BLAS call each (numpy matmul), first
on BLAS's own threads, then as one-thread calls on blocks of rows or of
output channels on the kernels' pool, added up by numpy. Every block was
R*S Python calls taking the GIL, and the additions were numpy passes over
the accumulator: on the Zen 3 VM the 8ce5618 benchmark measured 1.44x at two
threads against one on a 3x3 64->64 56x56 layer and 1.55x on a 1x1 512->512
14x14 one (OpenBLAS's own sgemm scaled 1.79x). On the micro-kernel the tap
passes are compiled jobs on the pool, one thread per grain of work
(:mod:`convbench.kernels.grain`); timed here on the same layers (and a 3x3
256->256 14x14 one), a call scaled 1.61-1.90x and was 7-21% faster on one
thread. The phase-split copy stays a numpy copy on one thread (2% of a call).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..kernels.aligned import aligned_empty
from ..kernels.gemm import gemm_kernel
from ..kernels._parallel import parallel_numpy
from ..kernels.window_depthwise import plan_window_depthwise
from ..layouts import adapt
from .. import implementation as impl
from ..phases import phased
from ..registry import register
from ..spec import ConvSpec
from ..algorithm import Algorithm, Array, ConvCall


def _plane_geometry(spec: ConvSpec) -> tuple[int, int, int]:
    """(Hq, Wq, rows per image) of one phase plane; one spare row per image
    absorbs the depthwise pass's reads of the cropped columns past the right
    edge (it reads whole plane rows; the GEMM path reads only real pixels)."""
    hp = spec.height + spec.pad_top + spec.pad_bottom
    wp = spec.width + spec.pad_left + spec.pad_right
    hq = -(-hp // spec.stride_h)
    wq = -(-wp // spec.stride_w)
    return hq, wq, (hq + 1) * wq


def _gemm_rows(spec: ConvSpec) -> int:
    """Rows of each tap's GEMM: every image's plane block, the last one cut at OH rows."""
    _, wq, per_image = _plane_geometry(spec)
    return (spec.batch - 1) * per_image + spec.output_height * wq


@register
class GemmDirect(Algorithm):
    name = "gemm-direct"
    description = (
        "R*S GEMMs, one output pass per kernel tap (numba micro-kernel), on shifted "
        "windows of a phase-split padded input; no im2col matrix"
    )
    natural_layout = "nhwc"

    def implementation(self, spec: ConvSpec) -> str:
        if spec.is_depthwise:
            return "numba:elementwise"  # depthwise: products per channel, no GEMM
        return impl.numba_gemm(spec.dtype)

    def workspace_bytes(self, spec: ConvSpec) -> int:
        taps = spec.kernel_h * spec.kernel_w
        offsets = spec.output_height * spec.output_width * taps * 8  # the kernel's A-row table
        if spec.is_pointwise:
            return offsets
        _, _, per_image = _plane_geometry(spec)
        planes = spec.stride_h * spec.stride_w * spec.batch * per_image * spec.in_channels
        if spec.is_depthwise:  # an accumulator of whole plane rows instead of the table
            return (planes + _gemm_rows(spec) * spec.out_channels) * spec.itemsize
        return planes * spec.itemsize + offsets

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
        r_taps, s_taps = spec.kernel
        sh, sw = spec.stride
        dh, dw = spec.dilation
        top, _, left, _ = spec.padding
        n, h, w_in, c = spec.batch, spec.height, spec.width, spec.in_channels
        oh, ow, k = spec.output_height, spec.output_width, spec.out_channels
        hq, wq, per_image = _plane_geometry(spec)
        dtype = spec.np_dtype
        # tap (r, s) reads plane (a, b) = (r*dh % sh, s*dw % sw) at a shift of `offset` plane pixels
        taps = [
            ((r * dh) % sh, (s * dw) % sw, ((r * dh) // sh) * wq + (s * dw) // sw)
            for r in range(r_taps)
            for s in range(s_taps)
        ]

        def pack(x: Array) -> Array:
            # planes[a, b, n, u, v, :] = padded x[n, u*sh + a, v*sw + b, :]
            planes = np.zeros((sh, sw, n, hq + 1, wq, c), dtype)
            for a in range(sh):
                for b in range(sw):
                    # padded row u*sh + a holds input row u*sh + a - top
                    u0 = max(0, -(-(top - a) // sh))
                    u1 = min(hq, (h - 1 + top - a) // sh + 1)
                    v0 = max(0, -(-(left - b) // sw))
                    v1 = min(wq, (w_in - 1 + left - b) // sw + 1)
                    if u1 > u0 and v1 > v0:
                        planes[a, b, :, u0:u1, v0:v1] = x[
                            :, u0 * sh + a - top : (u1 - 1) * sh + a - top + 1 : sh,
                            v0 * sw + b - left : (v1 - 1) * sw + b - left + 1 : sw,
                        ]
            return planes.reshape(sh, sw, n * per_image, c)

        if spec.is_depthwise:
            return adapt(phased(("pack", pack), ("gemm", _depthwise_windows(spec, weight, taps))),
                         spec.layout, "nhwc")
        kernel = gemm_kernel(dtype)
        packed = kernel.pack(np.asarray(weight), g)
        # one reduction block per tap (cut into channel blocks of about KC where Cg is larger):
        # tap by tap, each pass adds one tap's GEMM into the output tiles of a chunk
        per_tap = kernel.k_blocks(1, cg)
        kblocks = np.concatenate([per_tap + np.array([t, t, 0, 0]) for t in range(len(taps))])
        zero = np.zeros(1, dtype)  # never read: the planes hold the padding
        if spec.is_pointwise:
            # a 1x1, stride-1, unpadded layer is one GEMM on the input as it lies
            m = h * w_in
            offs = (np.arange(m, dtype=np.int64) * c).reshape(m, 1)

            def gemm1(x: Array) -> Array:
                out = aligned_empty((n, h, w_in, k), dtype)
                kernel.run(np.ascontiguousarray(x).reshape(-1), zero, offs, n, m * c, g, cg, kg,
                           packed, kblocks, out.reshape(-1))
                return out

            return adapt(phased(("gemm", gemm1)), spec.layout, "nhwc")
        # output pixel (i, j) of an image, tap (a, b, offset): plane (a, b)'s pixel
        # i*Wq + j + offset, as an element offset into the flat planes
        pixel = (np.arange(oh)[:, None] * wq + np.arange(ow)[None, :]).reshape(-1)
        offs = np.stack([((a * sw + b) * n * per_image + pixel + offset) * c for a, b, offset in taps],
                        axis=1).astype(np.int64)
        # the last image's furthest read must lie inside the planes (the kernel does not check)
        if (n - 1) * per_image * c + int(offs.max()) + c > sh * sw * n * per_image * c:
            raise AssertionError(f"gemm-direct: a tap reads past the phase planes of {spec}")

        def gemm(planes: Array) -> Array:
            out = aligned_empty((n, oh, ow, k), dtype)
            kernel.run(planes.reshape(-1), zero, offs, n, per_image * c, g, cg, kg, packed,
                       kblocks, out.reshape(-1))
            return out

        return adapt(phased(("pack", pack), ("gemm", gemm)), spec.layout, "nhwc")


def _depthwise_windows(spec: ConvSpec, weight: Array, taps: list[tuple[int, int, int]]) -> Callable:
    """A depthwise layer's taps: one product a channel, every tap in one compiled pass over
    whole plane rows (:mod:`convbench.kernels.window_depthwise`), cropped into the output."""
    r_taps, s_taps = spec.kernel
    sh, sw = spec.stride
    n, c, k = spec.batch, spec.in_channels, spec.out_channels
    oh, ow = spec.output_height, spec.output_width
    hq, wq, per_image = _plane_geometry(spec)
    dtype = spec.np_dtype
    plane_rows = _gemm_rows(spec) // wq
    # (T, G * Kg): each tap's weights over the channels
    wt = np.ascontiguousarray(weight.reshape(k, r_taps * s_taps).T).astype(dtype, copy=False)
    window_taps = plan_window_depthwise((sh, sw, n * per_image, c), np.array(taps, np.int64), wt)
    flops = 2.0 * plane_rows * wq * k * r_taps * s_taps

    def gemm(flat: Array) -> Array:
        y = np.empty((n, oh, ow, k), dtype)

        def row_block(lo: int, hi: int) -> None:
            # plane rows [lo, hi): every tap's product, then their crop into y (plane row q is
            # row q % (Hq+1) of image q // (Hq+1); rows past OH and columns past OW are cropped)
            acc = np.zeros((hi - lo, wq, k), dtype)
            window_taps(flat, lo * wq, hi * wq, acc.reshape(-1, k))
            for i in range(lo // (hq + 1), (hi - 1) // (hq + 1) + 1):
                q0, q1 = max(lo, i * (hq + 1)), min(hi, i * (hq + 1) + oh)
                if q1 > q0:
                    u0 = q0 - i * (hq + 1)
                    y[i, u0 : u0 + q1 - q0] = acc[q0 - lo : q1 - lo, :ow]

        parallel_numpy(row_block, plane_rows, flops=flops)
        return y

    return gemm
