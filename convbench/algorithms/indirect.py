"""``indirect``: Indirect Convolution (Dukhan, 2019), NHWC.

``prepare`` builds the indirection buffer (one offset per output pixel and
kernel tap; padding taps point at a zero vector) and packs the weights into
NR-wide panels. The call runs the shared GEMM micro-kernel
(:mod:`convbench.kernels.gemm`), which loads its A rows through the buffer:
no im2col matrix, no padded input. Depthwise layers (groups == C) use an
elementwise per-tap kernel instead of C GEMMs with one output column.

Phases: ``gemm`` (the buffer is built in ``prepare``; depthwise too); NCHW adds
its layout conversions (``pack`` in front, ``transform_out`` behind).

``u8s8`` layers run the 8-bit micro-kernel the same way
(:mod:`convbench.algorithms._quantized`).

Threads (issue 31): the GEMM's jobs (MR-pixel tiles x NC blocks of output
channels) are taken by the kernels' pool, on one thread per grain of work
(:mod:`convbench.kernels.grain`), so a 4 MFLOP MobileNet layer stays on one
thread instead of paying a helper's wake-up. Its 1x1 path is the same kernel
with one tap; the 1.05x issue 31 saw on a 1x1 512->512 14x14 layer was taken
in a contended stretch of that run (naive and oneDNN beside it: 1.00x, 1.07x),
where ``im2col-numba``, the same kernel on the same layer, scaled 1.78x.
"""

from __future__ import annotations

import numpy as np

from ..kernels.depthwise import depthwise, pack_depthwise
from ..kernels.aligned import aligned_empty
from ..kernels.gemm import gemm_kernel
from ..kernels.indirection import indirection_buffer, indirection_bytes
from ..layouts import adapt, conversion_bytes
from .. import implementation as impl
from ..phases import phased
from ..registry import register
from ..spec import ConvSpec
from ..algorithm import Algorithm, Array, ConvCall
from . import _quantized


@register
class Indirect(Algorithm):
    """Indirection buffer + register-blocked GEMM micro-kernel (NHWC)."""

    name = "indirect"
    description = "Indirect Convolution: indirection buffer + numba GEMM micro-kernel (NHWC)"
    natural_layout = "nhwc"
    constraints = "none"
    dtypes = ("float32", "float64", "u8s8")

    def supports(self, spec: ConvSpec) -> str | None:
        return _quantized.unsupported(spec) if spec.is_quantized else None

    def implementation(self, spec: ConvSpec) -> str:
        return impl.numba_depthwise(spec.dtype) if spec.is_depthwise else impl.numba_gemm(spec.dtype)

    def workspace_bytes(self, spec: ConvSpec) -> int:
        # indirection buffer + zero vector (+ layout conversion copies for NCHW)
        return (indirection_bytes(spec) + spec.in_channels * spec.itemsize + conversion_bytes(spec, "nhwc")
                + (_quantized.scratch_bytes(spec) if spec.is_quantized else 0))

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        if spec.is_quantized:
            return _quantized.indirect(spec, weight)
        dtype = spec.np_dtype
        weight = np.asarray(weight)
        offs = indirection_buffer(spec)
        zero = np.zeros(spec.in_channels, dtype)
        n, h, w, c = spec.batch, spec.height, spec.width, spec.in_channels
        shape = (n, spec.output_height, spec.output_width, spec.out_channels)
        img = h * w * c

        if spec.is_depthwise:
            wpk = pack_depthwise(weight, dtype)
            mult = spec.out_channels // c

            def call(x: Array) -> Array:
                out = aligned_empty(shape, dtype)
                xf = x.reshape(-1)  # guarded: C-contiguous, spec dtype; a view
                depthwise(xf, zero, offs, n, img, c, mult, wpk, out.reshape(-1))
                return out

            return adapt(phased(("gemm", call)), spec.layout, "nhwc")

        g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
        kernel = gemm_kernel(dtype)  # the machine's configured tile (kernels/configs.py)
        packed = kernel.pack(weight, g)
        kblocks = kernel.k_blocks(spec.kernel_h * spec.kernel_w, cg)

        def call(x: Array) -> Array:  # noqa: F811
            out = aligned_empty(shape, dtype)
            xf = x.reshape(-1)  # guarded: C-contiguous, spec dtype; a view
            kernel.run(xf, zero, offs, n, img, g, cg, kg, packed, kblocks, out.reshape(-1))
            return out

        return adapt(phased(("gemm", call)), spec.layout, "nhwc")
