"""What one prepared call allocates: the memory columns of a case (measured once, untimed)."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np

from ..spec import ConvSpec

Row = dict[str, Any]


def _nrt_allocs() -> int | None:
    """numba's runtime allocation count (NRT stats); None where unavailable.

    NRT statistics are off unless NUMBA_NRT_STATS=1 was set before numba
    initialised its runtime; ``memsys_enable_stats`` switches them on at any
    time (checked with numba 0.68), and only differences are used.
    The *bytes* numba allocates are seen by tracemalloc: numba's NRT
    allocator is ``PyMem_RawMalloc`` (``memsys_use_cpython_allocator``),
    which tracemalloc traces, so ``peak_bytes`` covers numpy and numba alike.
    """
    try:
        from numba.core.runtime import _nrt_python, rtsys

        _nrt_python.memsys_enable_stats()
        return int(rtsys.get_allocation_stats().alloc)
    except Exception:  # pragma: no cover - other numba versions
        return None


def measure_memory(algorithm: Any, spec: ConvSpec, weight: np.ndarray, x: np.ndarray) -> Row:
    """One untimed prepare + call under tracemalloc: what they allocated.

    ``prepare_bytes``: memory the prepared call keeps (packed weights,
    indirection buffer, transforms). ``peak_bytes``: peak of what one call
    allocated, its output included. ``measured_workspace_bytes``: the part
    of both beyond a copy of the weights and the output, comparable with the
    analytic ``workspace_bytes``.
    """
    # No gc.collect() here: it costs ~0.2 s per call once numba has compiled
    # (many live objects), and a collection during tracing can only lower the peak.
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        call = algorithm.prepare(spec, weight)
        prepared = tracemalloc.get_traced_memory()[0] - start
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        a0 = _nrt_allocs()
        y = call(x)
        a1 = _nrt_allocs()
        peak = tracemalloc.get_traced_memory()[1] - before
        del y, call
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return {
        "prepare_bytes": int(prepared),
        "peak_bytes": int(peak),
        "measured_workspace_bytes": int(max(0, prepared - spec.weight_bytes) + max(0, peak - spec.output_bytes)),
        "numba_allocs": (a1 - a0) if a0 is not None and a1 is not None else None,
    }
