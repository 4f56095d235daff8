"""GEMM-direct: the convolution as R*S GEMMs, one per kernel tap, no im2col matrix.

Each tap (r, s) multiplies a shifted view of the input by the (C, K) slice
``w[:, :, r, s]`` and accumulates. To make every tap ONE contiguous GEMM,
the padded input is split once into ``stride_h * stride_w`` phase planes
(space-to-depth): tap (r, s) then reads plane ``(r*dh % sh, s*dw % sw)``
shifted by ``(r*dh // sh, s*dw // sw)`` with unit stride, and a plane laid
out as rows of ``Wq`` pixels is a plain (rows x C) matrix whose shifted
window is contiguous. The GEMM runs over full plane rows (``Wq`` wide) and
the ``Wq - OW`` extra columns are cropped at the end. That copy is about
the size of the input, against ``R*S`` times the input for im2col.

A depthwise layer's taps are no GEMMs but one product per channel: they run
as one compiled pass over every tap's window
(:mod:`convbench.kernels.window_depthwise`, whose docstring says why not numpy).

Phases: ``pack`` (the phase-split padded copy; absent for a 1x1 layer) ->
``gemm`` (the R*S accumulated GEMMs and the crop of the ``Wq - OW`` extra
columns, which is where the accumulator meets the output).

Threads (issue 31): each tap was one GEMM on BLAS's own threads, followed
by a numpy accumulation on one thread; R*S thread wake-ups and barriers a
call, and the additions (as much memory traffic as the GEMMs' output, R*S
times) did not scale (1.34-1.52x at two threads, 0.87x on a 5x5 layer).
Now the GEMM rows are split into blocks of whole plane rows over the
kernels' pool (:func:`convbench.kernels._parallel.parallel_numpy`): each
thread runs every tap's one-thread BLAS call on its block, accumulates it
and crops it into the output, so the additions and the crop split too.
Where the output channels outnumber the rows (deep layers on small grids,
3x3 256->256 14x14: 224 rows), the blocks are of output channels instead:
every BLAS call repacks its B operand, and a block of rows repacks a tap's
whole weight matrix, where a block of channels repacks only its share
(measured on 224x256 @ 256x256: seven row blocks 351 us on one thread, four
channel blocks 302 us, the whole 285 us).
A thread's chunk holds at least :data:`TAP_GRAINS` of work per tap: each
chunk is Python that takes the GIL once per tap, and two threads handing the
GIL to each other (a 15-30 us wake-up each time on the 2-vCPU VMs) ran a 3x3
64->64 14x14 layer at 0.6x one thread; a layer with less work than two
chunks' runs on one.
Where ``convbench tune`` found BLAS's own threads faster for one product
(:mod:`convbench.kernels.split_gemm`) and a tap's GEMM holds two grains, a
dense layer's taps go whole to BLAS's threads one after another and are
added up on the calling thread: the pool's blocks, each tap a one-thread
sgemm on both threads, ran 1x1 stride-2 layers at 0.48-0.82x at two threads
on the Zen 1 VM (BLAS's threads: 1.1-1.4x), a 3x3 256->256 14x14 at 0.95x.
The phase-split copy stays a numpy copy on one thread (under 1% of a call).
A 1x1 layer's single GEMM is cut into blocks on the pool the same way
(:mod:`convbench.kernels.split_gemm`, as ``im2col``'s).
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels import split_gemm
from ..kernels.grain import active_grain
from ..kernels._parallel import parallel_numpy
from ..kernels.window_depthwise import plan_window_depthwise
from ..layouts import adapt
from .. import implementation as impl
from ..phases import phased
from ..registry import register
from ..spec import ConvSpec
from ..algorithm import Algorithm, Array, ConvCall


#: The least work of one tap's GEMM in a thread's chunk, in grains of the
#: machine's arithmetic (:mod:`convbench.kernels.grain`; 4 MFLOP with the
#: default grain, about 45 us at 90 GFLOP/s; a layer with less than two
#: chunks' work runs on one thread): every chunk is R*S BLAS calls (each
#: repacking its weights) and R*S turns of the GIL. Measured at two threads
#: against one on the Zen 4 VM (3x3 256->256 14x14 / 64->64 56x56), per tap:
#: 1 MFLOP 0.78x / 1.25x, 2 MFLOP 0.80x / 1.01x, 4 MFLOP 1.27x / 1.47x,
#: 8 MFLOP 0.90x / 1.02x. That the curve is not smooth (7 and 6 chunks
#: scale, 14 and 11 or 3 and 3 do not) is not explained; counted in rows
#: (512, before) the first layer ran on one thread.
TAP_GRAINS = 0.8
#: Output channels in one job of a layer split by channels (a multiple of every SIMD width).
CHANNEL_BLOCK = 16


def _plane_geometry(spec: ConvSpec) -> tuple[int, int, int]:
    """(Hq, Wq, rows per image) of one phase plane; one spare row per image
    absorbs the reads of the cropped columns past the right edge."""
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
        "R*S accumulated GEMMs (numpy/BLAS) on shifted views of a phase-split "
        "padded input; no im2col matrix"
    )
    natural_layout = "nhwc"

    def implementation(self, spec: ConvSpec) -> str:
        if spec.channels_per_group == 1 and spec.groups > 1:
            return "numba:elementwise"  # depthwise: products per channel, no GEMM
        return impl.blas()

    def workspace_bytes(self, spec: ConvSpec) -> int:
        if spec.is_pointwise:
            return 0
        hq, wq, per_image = _plane_geometry(spec)
        planes = spec.stride_h * spec.stride_w * spec.batch * per_image * spec.in_channels
        # accumulator + one GEMM product buffer
        acc = 2 * _gemm_rows(spec) * spec.out_channels
        return (planes + acc) * spec.itemsize

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
        r_taps, s_taps = spec.kernel
        sh, sw = spec.stride
        dh, dw = spec.dilation
        top, bottom, left, right = spec.padding
        n, h, w_in, c = spec.batch, spec.height, spec.width, spec.in_channels
        oh, ow, k = spec.output_height, spec.output_width, spec.out_channels
        hq, wq, per_image = _plane_geometry(spec)
        rows = _gemm_rows(spec)
        dtype = spec.np_dtype
        # (R, S, G, Cg, Kg): one (Cg, Kg) GEMM operand per tap and group
        wt = np.ascontiguousarray(
            weight.reshape(g, kg, cg, r_taps, s_taps).transpose(3, 4, 0, 2, 1)
        ).astype(dtype, copy=False)
        depthwise = cg == 1 and g > 1
        pointwise = spec.is_pointwise
        taps = [
            ((r * dh) % sh, (s * dw) % sw, ((r * dh) // sh) * wq + (s * dw) // sw, r, s)
            for r in range(r_taps)
            for s in range(s_taps)
        ]
        if depthwise:  # the taps (plane a, plane b, window offset) and their weights (T, G * Kg), one compiled pass
            window_taps = plan_window_depthwise(
                (sh, sw, n * per_image, c), np.array([t[:3] for t in taps], np.int64),
                np.ascontiguousarray(wt.reshape(r_taps * s_taps, g * kg)))

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

        plane_rows = rows // wq  # the GEMM rows come in whole plane rows of Wq pixels
        flops = 2.0 * rows * cg * k * r_taps * s_taps
        # What a chunk re-reads: a block of rows repacks every tap's (Cg x Kg) weights, a block
        # of output channels every tap's (rows x Cg) window; split the one whose copy is smaller.
        by_channels = g == 1 and k > rows
        job_flops = 2.0 * cg * (rows * CHANNEL_BLOCK if by_channels else wq * k)  # a job's GEMM, one tap
        tap_flops = 2.0 * rows * cg * k

        def crop(acc: Array, lo: int, hi: int, y: Array) -> None:
            # plane rows [lo, hi) of acc into y: plane row q is row q % (Hq+1) of image
            # q // (Hq+1); rows past OH and columns past OW are cropped
            for i in range(lo // (hq + 1), (hi - 1) // (hq + 1) + 1):
                q0, q1 = max(lo, i * (hq + 1)), min(hi, i * (hq + 1) + oh)
                if q1 > q0:
                    u0 = q0 - i * (hq + 1)
                    y[i, u0 : u0 + q1 - q0] = acc[q0 - lo : q1 - lo, :ow]

        def gemm(flat: Array) -> Array:
            y = np.empty((n, oh, ow, k), dtype)

            def row_block(lo: int, hi: int) -> None:
                # plane rows [lo, hi): every tap's GEMM on them, then their crop into y
                r0, r1 = lo * wq, hi * wq
                acc = np.zeros((r1 - r0, g, kg), dtype)
                if depthwise:  # every tap in one compiled pass: no GEMM, one product a channel
                    window_taps(flat, r0, r1, acc.reshape(r1 - r0, k))
                    crop(acc.reshape(hi - lo, wq, k), lo, hi, y)
                    return
                prod = np.empty((r1 - r0, kg), dtype)
                for a, b, offset, r, s in taps:
                    window = flat[a, b, offset + r0 : offset + r1]
                    for gi in range(g):
                        np.matmul(window[:, gi * cg : (gi + 1) * cg], wt[r, s, gi], out=prod)
                        acc[:, gi] += prod
                crop(acc.reshape(hi - lo, wq, k), lo, hi, y)

            def channel_block(lo: int, hi: int) -> None:
                # output channels [c0, c1) of every row (one group): every tap's GEMM, then the crop
                c0, c1 = lo * CHANNEL_BLOCK, min(k, hi * CHANNEL_BLOCK)
                acc = np.zeros((rows, c1 - c0), dtype)
                prod = np.empty((rows, c1 - c0), dtype)
                for a, b, offset, r, s in taps:
                    np.matmul(flat[a, b, offset : offset + rows], wt[r, s, 0, :, c0:c1], out=prod)
                    acc += prod
                crop(acc.reshape(plane_rows, wq, c1 - c0), 0, plane_rows, y[..., c0:c1])

            share = split_gemm.blas_share(tap_flops) if g == 1 else 1
            if share > 1:  # each tap's GEMM whole on BLAS's threads, added up on this one
                acc = np.zeros((rows, k), dtype)
                prod = np.empty((rows, k), dtype)
                with split_gemm.on_blas_threads(share):
                    for a, b, offset, r, s in taps:
                        np.matmul(flat[a, b, offset : offset + rows], wt[r, s, 0], out=prod)
                        acc += prod
                crop(acc.reshape(plane_rows, wq, k), 0, plane_rows, y)
                return y
            min_jobs = max(1, math.ceil(TAP_GRAINS * active_grain().flops / job_flops))
            if by_channels:
                parallel_numpy(channel_block, -(-k // CHANNEL_BLOCK), min_chunk=min_jobs, flops=flops)
            else:
                parallel_numpy(row_block, plane_rows, min_chunk=min_jobs, flops=flops)
            return y

        if pointwise:
            # a 1x1, stride-1, unpadded layer is one GEMM on the input as it lies
            def gemm1(x: Array) -> Array:
                m = n * h * w_in
                y = np.empty((m, g, kg), dtype)  # each group's (M, Kg) product straight into its channels
                split_gemm.matmul(x.reshape(m, g, cg).transpose(1, 0, 2), wt[0, 0], y.transpose(1, 0, 2))
                return y.reshape(n, h, w_in, k)

            return adapt(phased(("gemm", gemm1)), spec.layout, "nhwc")
        return adapt(phased(("pack", pack), ("gemm", gemm)), spec.layout, "nhwc")
