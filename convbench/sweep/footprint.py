"""What one prepared call allocates: the memory columns of a case (measured once, untimed).

Two measures, taken around the same untimed prepare + call:

- **tracemalloc** sees every allocation made through Python's allocators:
  numpy arrays, Python objects and numba's NRT (see :func:`_nrt_allocs`).
  It is the measure of convbench's own algorithms.
- **RSS** (Linux): the process's resident-set high-water mark, reset just
  before the call (``5`` written to ``/proc/self/clear_refs``) and read from
  ``/proc/self/status`` after it, minus the resident set before it: what the
  call needed beyond what was already resident, whoever allocated it. It is
  the measure of algorithms whose allocations tracemalloc cannot see
  (:func:`traces_memory`: the peers, torch, oneDNN and ONNX Runtime with
  their own allocators, or a plugin that sets ``memory_traced = False``).
  Page-granular, and a lower bound where a library keeps memory between
  calls (caches, persistent scratchpads, an arena): that was resident before.
  Free heap memory is handed back first (``malloc_trim``), so temporaries the
  warm-up call left in the heap (the sweep stops glibc from trimming, see
  :mod:`convbench.machine.malloc_policy`) fault in again and are counted.

``memory_method`` says which measure the row's ``prepare_bytes``,
``peak_bytes`` and ``measured_workspace_bytes`` are, or why there is none;
``rss_peak_bytes`` is recorded for every algorithm where it can be.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import tracemalloc
from typing import Any

import numpy as np

from ..spec import ConvSpec

Row = dict[str, Any]

STATUS = "/proc/self/status"
CLEAR_REFS = "/proc/self/clear_refs"
#: After a reset the high-water mark must be within this of the resident set, or the
#: kernel ignored the reset (a sandbox may accept the write and do nothing).
RESET_SLACK = 1 << 20


def traces_memory(algorithm: Any) -> bool:
    """Whether tracemalloc sees what ``algorithm`` allocates: its ``memory_traced``
    (``None``, the default, means: unless it is a peer)."""
    traced = getattr(algorithm, "memory_traced", None)
    return not getattr(algorithm, "peer", False) if traced is None else bool(traced)


def read_status(*keys: str) -> dict[str, int]:
    """``keys`` (e.g. ``VmRSS``, ``VmHWM``) of ``/proc/self/status``, in bytes."""
    out: dict[str, int] = {}
    with open(STATUS) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in keys:
                out[key] = int(value.split()[0]) * 1024  # "kB"
    missing = [k for k in keys if k not in out]
    if missing:
        raise OSError(f"{STATUS} has no {', '.join(missing)}")
    return out


def reset_rss_peak() -> str | None:
    """Reset this process's RSS high-water mark to its resident set; ``None`` when
    that worked, else why the RSS peak cannot be measured here."""
    if not sys.platform.startswith("linux"):
        return f"no RSS high-water mark to reset on {sys.platform} (Linux only)"
    try:
        with open(CLEAR_REFS, "w") as f:
            f.write("5")
        now = read_status("VmRSS", "VmHWM")
    except (OSError, ValueError) as exc:
        return f"cannot reset the RSS high-water mark ({CLEAR_REFS}): {exc}"
    if now["VmHWM"] - now["VmRSS"] > RESET_SLACK:
        return f"the kernel ignored the reset of the RSS high-water mark ({CLEAR_REFS})"
    return None


_libc: Any = None


def trim_heap() -> None:
    """Hand free heap memory back to the kernel (glibc ``malloc_trim(0)``); a no-op elsewhere."""
    global _libc
    if _libc is None:
        try:
            name = ctypes.util.find_library("c")
            _libc = getattr(ctypes.CDLL(name), "malloc_trim", False) if name else False  # glibc only
        except OSError:
            _libc = False
    if _libc:
        _libc(0)


def _rss() -> int:
    return read_status("VmRSS")["VmRSS"]


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
    """One untimed prepare + call: what they allocated (the module docstring has the measures).

    ``prepare_bytes``: memory the prepared call keeps (packed weights,
    indirection buffer, transforms). ``peak_bytes``: peak of what one call
    allocated, its output included. ``measured_workspace_bytes``: the part
    of both beyond a copy of the weights and the output, comparable with the
    analytic ``workspace_bytes``. All three by ``memory_method``
    (``tracemalloc``, ``rss``, or ``not measured: <why>``: then ``None``,
    never 0). ``rss_peak_bytes``: the call's RSS growth, for every algorithm
    where it can be measured (``None`` elsewhere).
    """
    traced = traces_memory(algorithm)
    # No gc.collect() here: it costs ~0.2 s per call once numba has compiled
    # (many live objects), and a collection during tracing can only lower the peak.
    was_tracing = tracemalloc.is_tracing()
    if traced and not was_tracing:
        tracemalloc.start()
    rss_why = reset_rss_peak()  # probed first: without it, no RSS read is trusted
    try:
        trim_heap()
        r0 = _rss() if rss_why is None else 0
        start = tracemalloc.get_traced_memory()[0]
        call = algorithm.prepare(spec, weight)
        prepared = tracemalloc.get_traced_memory()[0] - start
        trim_heap()
        r1 = _rss() if rss_why is None else 0
        rss_why = rss_why or reset_rss_peak()
        before_rss = _rss() if rss_why is None else 0
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        a0 = _nrt_allocs()
        y = call(x)
        a1 = _nrt_allocs()
        peak = tracemalloc.get_traced_memory()[1] - before
        rss_peak = max(0, read_status("VmHWM")["VmHWM"] - before_rss) if rss_why is None else None
        del y, call
    finally:
        if traced and not was_tracing:
            tracemalloc.stop()
    if traced:
        method = "tracemalloc" if rss_why is None else f"tracemalloc; rss not measured: {rss_why}"
    elif rss_why is None:
        method, prepared, peak = "rss", max(0, r1 - r0), rss_peak
    else:
        method = f"not measured: tracemalloc cannot see this algorithm's allocations, and {rss_why}"
    measured = not method.startswith("not measured")
    return {
        "prepare_bytes": int(prepared) if measured else None,
        "peak_bytes": int(peak) if measured else None,
        "measured_workspace_bytes": (int(max(0, prepared - spec.weight_bytes) + max(0, peak - spec.output_bytes))
                                     if measured else None),
        "rss_peak_bytes": rss_peak,
        "memory_method": method,
        "numba_allocs": (a1 - a0) if a0 is not None and a1 is not None else None,
    }
