"""What really computes a built-in algorithm's call: the ``implementation`` column.

Each built-in's :meth:`~convbench.Algorithm.implementation` answers through
these functions, so there is one place per engine: the BLAS numpy calls
(named by threadpoolctl, e.g. ``openblas:SkylakeX``) and the numba GEMM
micro-kernel (``numba:gemm-5x16``: rows x columns of its register tile; the
8-bit one by its configuration's name, ``numba:u8s8-gemm-8x32c4-avx512vnni``).
When kernel configurations choose tiles per CPU, :func:`numba_gemm` is the
one function to point at that choice.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=None)
def blas() -> str:
    """The BLAS numpy's matmul calls: ``<library>:<architecture>`` (threadpoolctl's
    ``internal_api`` and ``architecture``, the kernel set the library chose for this CPU)."""
    from threadpoolctl import threadpool_info

    for info in threadpool_info():
        if info.get("user_api") == "blas":
            detail = info.get("architecture") or info.get("version") or "unknown"
            return f"{info.get('internal_api')}:{detail}"
    return "blas:unknown"


def numba_gemm(dtype: str | np.dtype) -> str:
    """The numba GEMM micro-kernel for ``dtype``: ``numba:gemm-MRxNR-ISA``; for
    ``u8s8`` the 8-bit kernel's name, e.g. ``numba:u8s8-gemm-8x32c4-avx512vnni``."""
    from .kernels.configs import active_config, active_quant_config

    if str(dtype) == "u8s8":
        return f"numba:{active_quant_config().name}"
    cfg = active_config()
    return f"numba:gemm-{cfg.mr}x{cfg.nr(np.dtype(dtype))}-{cfg.isa}"


def numba_depthwise(dtype: str | np.dtype) -> str:
    """The numba depthwise kernel for ``dtype``: ``numba:depthwise``; for ``u8s8``
    ``numba:u8s8-dwconv-PIXELSxCHANNELS-ISA`` (its tile)."""
    from .kernels.configs import active_quant_config

    if str(dtype) == "u8s8":
        cfg = active_quant_config()
        return f"numba:u8s8-dwconv-{cfg.dw_pixels}x{cfg.dw_channels}-{cfg.isa}"
    return "numba:depthwise"
