"""Whether this CPU has VNNI, and what the x86 libraries' 8-bit kernels do without it.

The ``u8s8`` peers (PyTorch's fbgemm and oneDNN engines, ONNX Runtime's MLAS)
multiply u8 activations by s8 weights with ``vpdpbusd`` where the CPU has
VNNI (AVX-512 VNNI or AVX-VNNI), exact in int32; without it, with
``vpmaddubsw``, which adds each pair of products in saturating int16. The
conformance battery found them wrong that way on an AVX2 machine (a Zen 1
VM), so there they are refused (``skipped``, with this reason), never timed.
"""

from __future__ import annotations

import platform
from functools import lru_cache


@lru_cache(maxsize=1)
def host_features() -> frozenset[str]:
    """The host CPU's features (the host's, not numba's target: what the libraries dispatch on)."""
    try:
        import llvmlite.binding as llvm

        return frozenset(k for k, v in llvm.get_host_cpu_features().items() if v)
    except Exception:  # noqa: BLE001 - no feature list: none known
        return frozenset()


def saturates_without_vnni() -> str | None:
    """Why the x86 libraries' u8s8 kernels (oneDNN, fbgemm, ONNX Runtime's MLAS) are wrong on
    this CPU, or None: without VNNI (``vpdpbusd``) they multiply with ``vpmaddubsw``, which sums
    each pair of u8 x s8 products in saturating int16, so full-range u8 activations overflow
    (the libraries' own int8 recipes keep activations to 7 bits, ``reduce_range``, for this)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return None
    if host_features() & {"avx512vnni", "avxvnni"}:
        return None
    return ("on a CPU without VNNI its u8s8 kernels sum pairs of u8 x s8 products in saturating int16 "
            "(vpmaddubsw): measured wrong by 7 to 255 LSB on full-range u8 activations (the conformance "
            "battery on the Zen 1 VM, AVX2)")
