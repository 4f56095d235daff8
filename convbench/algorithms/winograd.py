"""``winograd``: Winograd F(2x2, 3x3) (Lavin & Gray), 4x4 input tiles, the B/G/A
transforms and 16 channel GEMMs, on the numba path its larger-tile siblings
use (:mod:`.winograd_tiled`: the transforms, the grouped GEMM on the shared
micro-kernel, the phases and the threads are theirs). Only 3x3 kernels,
stride 1, dilation 1.

Why not BLAS (issue 31). Its 16 GEMMs were one-thread BLAS calls, a share
of the planes on each of the pool's threads (and before that one batched
matmul on BLAS's own threads, 0.87-0.94x at two threads against one). On
the Zen 3 VM the BLAS planes scaled 1.49-1.52x at two threads, where the
numba GEMM of F(4x4) scaled 1.54-1.84x on the same layers, and on one
thread the numba path ran F(2x2) itself 7-26% faster (1.44 against 1.95
ms on 3x3 256->256 14x14, 1.89 against 2.20 ms on 64->64 56x56, 2.68
against 2.88 ms on 512->512 7x7; depthwise 32-1024 channels 1.3-2.1x).
The 16 planes of a tile now lie next to each other, tile-major, as the A
operand of the grouped GEMM, not as 16 skewed planes for a batched matmul.
"""

from __future__ import annotations

from typing import ClassVar

from ..registry import register
from .winograd_tiled import _WinogradTiled


@register
class Winograd(_WinogradTiled):
    """Winograd F(2x2, 3x3) on the shared numba GEMM (NHWC).

    2.25x fewer multiplications than direct; its small coefficients (0, +-1,
    1/2) round least of the family: on the conformance battery float32
    reached at most 2.4e-7 (F(4x4): 2.9e-6). Tolerance 5e-4 (float32), 1e-9
    (float64), as before the move onto the numba path.
    """

    name = "winograd"
    description = "Winograd F(2x2,3x3): numba tile transforms + 16 channel GEMMs on the numba micro-kernel"
    m = 2
    tolerance: ClassVar[dict[str, float]] = {"float32": 5e-4, "float64": 1e-9}
