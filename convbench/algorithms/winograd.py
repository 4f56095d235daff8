"""Winograd F(2x2, 3x3): 4x4 input tiles, B/G/A transforms, 16 GEMMs over channels.

Weights are transformed once in ``prepare`` (U = G g G^T). A call transforms
the input tiles (numba), does the 16 (per group) channel GEMMs as batched
numpy/BLAS matmuls (an elementwise product for depthwise layers), and
transforms back (numba). Only 3x3 kernels, stride 1, dilation 1.

Threads (issue 31): the 16 GEMMs were one batched matmul on BLAS's own
threads: 16 small GEMMs (784 x 64 x 64 on a 56x56 layer) that BLAS split
one by one, each split paying a wake-up and a barrier, while the
transforms' pool helpers polled on the same cores (0.87-0.94x at two
threads against one). Now every step runs on the kernels' pool
(:mod:`convbench.kernels._parallel`): the transforms over tiles, and the
GEMMs as a share of the 16 planes per thread, each a one-thread BLAS call;
every step gets one thread per grain of work (:mod:`convbench.kernels.grain`;
the GEMMs, Python calls that take the GIL, per grain of Python steps: on the
Zen 3 VM they ran 0.64x at two threads on a 4.7 MFLOP layer, and first paid
near 25-35 MFLOP).
Where ``convbench tune`` found BLAS's own threads faster for one product
(:mod:`convbench.kernels.split_gemm`) and a plane's GEMM holds two grains, the
planes go to BLAS's threads one after another instead: two Python threads
each in a one-thread sgemm scaled 16 planes of 49x256x256 only 1.19x on the
Zen 1 VM, BLAS's two threads plane by plane 1.64x.
Depthwise layers keep all channels in one group's planes (see ``prepare``):
as one plane a group, a 512-channel 14x14 layer ran 0.52x at two threads
against one, and 2.4x slower than now on one.

Phases: ``transform_in`` (B^T d B) -> ``gemm`` (the 16 channel GEMMs) ->
``transform_out`` (A^T m A); NCHW adds its layout conversions.
"""

from __future__ import annotations

import numpy as np

from ..kernels import split_gemm
from ..kernels._parallel import parallel_numpy
from ..kernels.aligned import aligned_empty
from ..kernels.winograd import input_transform, output_transform, skewed_planes, weight_transform
from ..layouts import adapt
from .. import implementation as impl
from ..phases import phased
from ..registry import register
from ..spec import ConvSpec
from ..algorithm import Algorithm, Array, ConvCall


#: Planes a thread takes at a time in the batched GEMM: each chunk is a Python
#: call that takes the GIL, and on the 2-vCPU VMs a thread that finds the GIL
#: held sleeps 15-30 us; 16 one-plane chunks scaled the GEMM 1.43-1.5x at two
#: threads, four chunks of four 1.6-1.9x (3x3 64->64 56x56, 256->256 14x14).
PLANES_PER_CHUNK = 4


def _tiles(spec: ConvSpec) -> tuple[int, int]:
    return -(-spec.output_height // 2), -(-spec.output_width // 2)


@register
class Winograd(Algorithm):
    name = "winograd"
    description = (
        "Winograd F(2x2,3x3): numba tile transforms + 16 batched channel GEMMs (BLAS)"
    )
    natural_layout = "nhwc"
    constraints = "3x3 kernel, stride 1, dilation 1"
    # 2.25x fewer multiplications, but the transforms round differently.
    tolerance = {"float32": 5e-4, "float64": 1e-9}

    def implementation(self, spec: ConvSpec) -> str:
        if spec.channels_per_group == 1 and spec.groups > 1:
            return "numpy:elementwise"  # depthwise: products per channel, no GEMM
        return impl.blas()  # the 16 channel GEMMs; transforms are numba

    def supports(self, spec: ConvSpec) -> str | None:
        if spec.kernel != (3, 3):
            return f"Winograd F(2x2,3x3) needs a 3x3 kernel, not {spec.kernel_h}x{spec.kernel_w}"
        if spec.stride != (1, 1):
            return "Winograd F(2x2,3x3) needs stride 1"
        if spec.dilation != (1, 1):
            return "Winograd F(2x2,3x3) needs dilation 1"
        return None

    def workspace_bytes(self, spec: ConvSpec) -> int:
        th, tw = _tiles(spec)
        tiles = spec.batch * th * tw
        v = 16 * tiles * spec.in_channels
        m = 16 * tiles * spec.out_channels
        u = 16 * spec.channels_per_group * spec.out_channels
        return (v + m + u) * spec.itemsize

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        reason = self.supports(spec)
        if reason:
            raise ValueError(reason)
        g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
        th, tw = _tiles(spec)
        n_tiles = spec.batch * th * tw
        u = weight_transform(weight, g)  # (16, G, Cg, Kg)
        dtype = spec.np_dtype
        out_shape = (spec.batch, spec.output_height, spec.output_width, spec.out_channels)
        gemm_flops = 2.0 * 16 * n_tiles * cg * spec.out_channels
        # The transforms treat every channel alike, whatever its group. One input channel a
        # group (depthwise): their planes hold all channels as one group, (16, 1, T, C), so
        # a tile's channels are contiguous; as (16, G, T, 1) each tile wrote G scattered
        # values a plane, and two threads' tiles shared cache lines (a 512-channel 14x14
        # depthwise layer: 530 us for the input transform on one thread, slower on two).
        elementwise = cg == 1
        planes_g, planes_c, planes_k = (1, spec.in_channels, spec.out_channels) if elementwise else (g, cg, kg)
        u_each = u.reshape(16, 1, 1, spec.out_channels) if elementwise else None  # per output channel
        src = np.arange(spec.out_channels) // kg  # the input channel each output channel reads

        def transform_in(x: Array) -> Array:
            v = skewed_planes((planes_g, n_tiles, planes_c), dtype)
            input_transform(np.ascontiguousarray(x), spec.pad_top, spec.pad_left, th, tw, v)
            return v

        def gemm(v: Array) -> Array:
            m = skewed_planes((planes_g, n_tiles, planes_k), dtype)
            if u_each is not None:  # products per channel, no GEMM
                # on as many threads as the input transform (its bytes): split over two cores
                # beside transforms on one, M was read half from the other core's cache (a
                # 512-channel 14x14 layer: products 97 -> 107-129 us, the output transform 118 -> 128)
                parallel_numpy(lambda lo, hi: np.multiply(v[lo:hi] if kg == 1 else v[lo:hi][..., src],
                                                          u_each[lo:hi], out=m[lo:hi]),
                               16, min_chunk=PLANES_PER_CHUNK, nbytes=spec.input_bytes + v.nbytes)
            elif planes_g == 1 and split_gemm.blas_share(gemm_flops / 16) > 1:  # BLAS's threads, plane by plane
                split_gemm.matmul(v[:, 0], u[:, 0], m[:, 0])
            else:  # the planes' GEMMs, a share of the 16 on each thread, BLAS at one thread
                parallel_numpy(lambda lo, hi: np.matmul(v[lo:hi], u[lo:hi], out=m[lo:hi]), 16,
                               min_chunk=PLANES_PER_CHUNK, flops=gemm_flops)
            return m

        def transform_out(m: Array) -> Array:
            y = aligned_empty(out_shape, dtype)
            output_transform(m, th, tw, y)
            return y

        call = phased(("transform_in", transform_in), ("gemm", gemm), ("transform_out", transform_out))
        return adapt(call, spec.layout, "nhwc")
