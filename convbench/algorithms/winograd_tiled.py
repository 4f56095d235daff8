"""The Winograd family on the shared numba GEMM, NHWC: F(2x2, 3x3) (``winograd``,
Lavin & Gray), F(4x4, 3x3) (``winograd-f4``, as oneDNN uses) and F(6x6, 3x3)
(``winograd-f6``, as NNPACK uses).

``prepare`` transforms the weights once (U = G g G^T, in float64, then the
layer's dtype) and packs them for the machine's configured micro-kernel as
a grouped GEMM of ``a*a*G`` groups (``a = m + 2``). A call transforms the
input tiles (numba, :mod:`convbench.kernels.winograd_tiled`), runs the
``a*a`` channel GEMMs as that one grouped GEMM on the same kernel
``indirect`` uses (:mod:`convbench.kernels.gemm`), and transforms back.
Depthwise layers multiply elementwise instead (a GEMM with one output
column per group would waste the tile). Only 3x3 kernels, stride 1,
dilation 1.

F(4x4) does 36 multiplies per 16 outputs where direct does 144 (4x fewer;
F(2x2) 2.25x, F(6x6) 5.06x), but the transforms' large coefficients round:
the tolerances below are the measured worst case on the conformance battery
(``convbench.testing``) with margin; see each class.

Phases: ``transform_in`` (B^T d B) -> ``gemm`` (the grouped GEMM, or the
elementwise products of a depthwise layer) -> ``transform_out`` (A^T M A);
NCHW adds its layout conversions.

Threads (issue 31): all three steps run on the kernels' pool, tiles for the
transforms and (tile, plane, channel block) jobs for the GEMM, each step on
one thread per grain of work (:mod:`convbench.kernels.grain`). The GEMM is
the shared numba kernel, not BLAS: F(2x2) had its 16 GEMMs as one-thread
BLAS calls on the pool's threads, a share of the planes each, and they
scaled 1.49-1.52x at two threads where F(4x4)'s numba GEMM scaled
1.54-1.84x (Zen 3 VM, 64->64 56x56 and 256->256 14x14); on the numba GEMM
F(2x2) also ran 7-26% faster on one thread (docs/threads.md). The
transforms declare both their bytes (V and M are ``(m+2)^2 / m^2`` times
the input and output: 2.25x for F(4x4)) and their arithmetic: counted in
bytes alone, a tuned grain of 1.31 MB a thread kept a 64-channel 56x56
layer's transforms on one thread, though they ran 1.4-2.0x faster split
(docs/threads.md). The depthwise products split over tiles on the pool, one
block a thread, on as many threads as their bytes ask.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .. import implementation as impl
from ..kernels._parallel import parallel_numpy_blocks
from ..kernels.aligned import aligned_empty
from ..kernels.gemm import gemm_kernel
from ..kernels.winograd_tiled import input_transform, output_transform, weight_transform
from ..layouts import adapt
from ..phases import phased
from ..registry import register
from ..spec import ConvSpec
from ..algorithm import Algorithm, Array, ConvCall


class _WinogradTiled(Algorithm):
    """Winograd F(m x m, 3x3) with output tile ``m``; subclasses set ``m``."""

    m: ClassVar[int] = 4
    natural_layout = "nhwc"
    constraints = "3x3 kernel, stride 1, dilation 1"

    def supports(self, spec: ConvSpec) -> str | None:
        f = f"Winograd F({self.m}x{self.m},3x3)"
        if spec.kernel != (3, 3):
            return f"{f} needs a 3x3 kernel, not {spec.kernel_h}x{spec.kernel_w}"
        if spec.stride != (1, 1):
            return f"{f} needs stride 1"
        if spec.dilation != (1, 1):
            return f"{f} needs dilation 1"
        return None

    def implementation(self, spec: ConvSpec) -> str:
        if spec.channels_per_group == 1:
            return "numpy:elementwise"  # depthwise: products per channel, no GEMM
        return impl.numba_gemm(spec.dtype)  # the channel GEMMs; the transforms are numba too

    def _tiles(self, spec: ConvSpec) -> tuple[int, int]:
        return -(-spec.output_height // self.m), -(-spec.output_width // self.m)

    def workspace_bytes(self, spec: ConvSpec) -> int:
        th, tw = self._tiles(spec)
        planes = (self.m + 2) ** 2
        tiles = spec.batch * th * tw
        v = tiles * planes * spec.in_channels
        mm = tiles * planes * spec.out_channels
        u = planes * spec.channels_per_group * spec.out_channels
        return (v + mm + u) * spec.itemsize

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        reason = self.supports(spec)
        if reason:
            raise ValueError(reason)
        m, dtype = self.m, spec.np_dtype
        planes = (m + 2) ** 2
        g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
        c, k = spec.in_channels, spec.out_channels
        th, tw = self._tiles(spec)
        tiles = spec.batch * th * tw
        u = weight_transform(np.asarray(weight), m, g)  # (planes*G*Kg, Cg, 1, 1), float64
        out_shape = (spec.batch, spec.output_height, spec.output_width, k)
        geometry = (spec.pad_top, spec.pad_left, th, tw)

        def transform_in(x: Array) -> Array:
            v = aligned_empty((tiles, planes, c), dtype)
            input_transform(m, np.ascontiguousarray(x, dtype), *geometry[:2], th, tw, v)
            return v

        def transform_out(mm: Array) -> Array:
            y = aligned_empty(out_shape, dtype)
            output_transform(m, mm, th, tw, y)
            return y

        if cg == 1:  # depthwise (and channel multipliers): elementwise per plane
            u_dw = np.ascontiguousarray(u.reshape(planes, k), dtype)
            src = np.arange(k) // (k // c)  # input channel of each output channel

            def products(v: Array) -> Array:
                mm = aligned_empty((tiles, planes, k), dtype)

                def tile_block(lo: int, hi: int) -> None:
                    np.multiply(v[lo:hi, :, src] if k != c else v[lo:hi], u_dw, out=mm[lo:hi])

                # on as many threads as the bytes ask: on one numpy thread beside transforms on
                # two, F(2x2) ran a 128-channel 56x56 depthwise layer in 3.7 ms at two threads
                # against 1.8 ms at one (split: 0.87 against 1.08 ms; Zen 3 VM). One block a
                # thread: each block is a numpy call that takes the GIL, and 16 blocks a thread
                # ran a 256-channel 28x28 layer's 0.23 ms of products at 0.60-0.75x on two
                parallel_numpy_blocks(tile_block, tiles, nbytes=v.nbytes + mm.nbytes)
                return mm

            return adapt(phased(("transform_in", transform_in), ("gemm", products),
                                ("transform_out", transform_out)), spec.layout, "nhwc")

        kernel = gemm_kernel(dtype)  # the machine's configured tile, as indirect's
        packed = kernel.pack(u.astype(dtype), planes * g)
        kblocks = kernel.k_blocks(1, cg)
        offs = (np.arange(tiles, dtype=np.int64) * planes * c).reshape(tiles, 1)
        zero = np.zeros(planes * c, dtype)  # never read: every row is a real tile

        def gemm(v: Array) -> Array:
            mm = aligned_empty((tiles, planes, k), dtype)
            kernel.run(v.reshape(-1), zero, offs, 1, 0, planes * g, cg, kg, packed, kblocks,
                       mm.reshape(-1))
            return mm

        return adapt(phased(("transform_in", transform_in), ("gemm", gemm),
                            ("transform_out", transform_out)), spec.layout, "nhwc")


@register
class WinogradF4(_WinogradTiled):
    """Winograd F(4x4, 3x3) on the shared numba GEMM (NHWC).

    Tolerance (max relative error against the float64 reference, see
    ``convbench.reference.relative_error``), measured: on the conformance
    battery (``convbench.testing.conformance_specs``: its 72 3x3 stride-1
    cases, both layouts and dtypes) float32 F(4x4) reached at most 2.9e-6
    where F(2x2) (``winograd``) reached 2.4e-7, 12x more; on the four
    ResNet-50 3x3 layers (64..512 channels, uniform(-1, 1) data) 1.4e-5
    against F(2x2)'s 7.5e-7. 2e-4 keeps a 14x margin over the worst seen
    for deeper reductions and other data. float64: 5.9e-15, held to 1e-10.
    """

    name = "winograd-f4"
    description = "Winograd F(4x4,3x3): numba tile transforms + 36 channel GEMMs on the numba micro-kernel"
    m = 4
    tolerance: ClassVar[dict[str, float]] = {"float32": 2e-4, "float64": 1e-10}


@register
class WinogradF6(_WinogradTiled):
    """Winograd F(6x6, 3x3) on the shared numba GEMM (NHWC).

    Larger tiles, larger transform coefficients (up to 32 in A, 21/4 in
    B), measured: on the conformance battery float32 F(6x6) reached at most
    5.2e-6 (F(4x4): 2.9e-6, F(2x2): 2.4e-7), on the ResNet-50 3x3 layers
    2.6e-5 (F(4x4): 1.4e-5); float64 2.9e-14. Tolerance 1e-3 (float32, a
    38x margin), 1e-9 (float64). It holds its accuracy at these sizes;
    error grows with the reduction (C) and the data's dynamic range.
    """

    name = "winograd-f6"
    description = "Winograd F(6x6,3x3): numba tile transforms + 64 channel GEMMs on the numba micro-kernel"
    m = 6
    tolerance: ClassVar[dict[str, float]] = {"float32": 1e-3, "float64": 1e-9}
