"""Run a numba kernel over a range of jobs on ``numba.get_num_threads()`` cores.

Why not ``prange``: every ``parallel=True`` function costs about 1.5 s more
to compile than the same loop without it (measured 2.1 s against 0.6 s for
the GEMM driver), and with four kernels in two dtypes that alone exceeded
the 20 s cold-compile budget. The kernels here are plain
``@njit(nogil=True)`` functions of a job range ``[lo, hi)``; this module
splits the range into one contiguous chunk per thread and runs the chunks on
a persistent pool (the calling thread takes the first chunk). It honours
``numba.set_num_threads`` exactly as ``prange`` does, so
``convbench.machine.threads.limit_threads`` governs these kernels too, and with one
thread the kernel is called directly with no pool involved.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numba

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                workers = max(1, int(numba.config.NUMBA_NUM_THREADS) - 1)
                _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convbench")
    return _pool


def chunks(njobs: int, nthreads: int) -> list[tuple[int, int]]:
    """``[0, njobs)`` as ``nthreads`` contiguous, near-equal ``(lo, hi)`` ranges."""
    nthreads = max(1, min(nthreads, njobs))
    base, extra = divmod(njobs, nthreads)
    out, lo = [], 0
    for i in range(nthreads):
        hi = lo + base + (1 if i < extra else 0)
        out.append((lo, hi))
        lo = hi
    return out


def parallel_for(kernel: Callable[..., Any], njobs: int, *args: Any) -> None:
    """``kernel(lo, hi, *args)`` for a split of ``[0, njobs)`` over the threads.

    ``kernel`` must release the GIL (``@njit(nogil=True)``) and its jobs must
    write disjoint outputs.
    """
    parts = chunks(njobs, numba.get_num_threads())
    if len(parts) == 1:
        kernel(0, njobs, *args)
        return
    pool = _get_pool()
    futures = [pool.submit(kernel, lo, hi, *args) for lo, hi in parts[1:]]
    try:
        kernel(parts[0][0], parts[0][1], *args)
    finally:
        for f in futures:
            f.result()
