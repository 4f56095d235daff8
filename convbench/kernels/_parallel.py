"""Run a numba kernel over a range of jobs on ``numba.get_num_threads()`` cores.

Why not ``prange``: every ``parallel=True`` function costs about 1.5 s more
to compile than the same loop without it (measured 2.1 s against 0.6 s for
the GEMM driver), and with four kernels in two dtypes that alone exceeded
the 20 s cold-compile budget. The kernels here are plain
``@njit(nogil=True)`` functions of a job range ``[lo, hi)``; this module
runs them on a persistent pool (the calling thread works too). It honours
``numba.set_num_threads`` exactly as ``prange`` does, so
``convbench.machine.threads.limit_threads`` governs these kernels too, and with one
thread the kernel is called directly with no pool involved.

Why dynamic: on a VM the cores do not run at the same speed (measured on
the 2-vCPU Xeon: 25 against 54 GFLOP/s at the same moment), so one equal
chunk per thread runs at the slow core's pace. The range is cut into
:func:`chunk_count` chunks, several per thread, and every thread takes the
next chunk from a shared counter until none is left: a fast core simply
takes more chunks. The counter is ``next()`` on an ``itertools.count``,
which is atomic under the GIL; the kernel itself runs without the GIL, so
taking a chunk costs one Python call (a few microseconds) per chunk, which
is why chunks are not made smaller than :data:`MIN_JOBS_PER_CHUNK` jobs.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numba

#: Chunks per thread: enough that a core twice as fast as the other ends
#: within about one chunk of it, few enough that the per-chunk Python call
#: stays negligible.
CHUNKS_PER_THREAD = 8
#: No chunk smaller than this many jobs (a job is a tile, a row or a plane).
MIN_JOBS_PER_CHUNK = 2

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


def chunks(njobs: int, nchunks: int) -> list[tuple[int, int]]:
    """``[0, njobs)`` as ``nchunks`` contiguous, near-equal ``(lo, hi)`` ranges
    (fewer when there are fewer jobs; one empty range for no jobs)."""
    nchunks = max(1, min(nchunks, njobs))
    base, extra = divmod(njobs, nchunks)
    out, lo = [], 0
    for i in range(nchunks):
        hi = lo + base + (1 if i < extra else 0)
        out.append((lo, hi))
        lo = hi
    return out


def chunk_count(njobs: int, nthreads: int) -> int:
    """How many chunks ``njobs`` are cut into for ``nthreads`` threads."""
    if nthreads <= 1:
        return 1
    return max(1, min(nthreads * CHUNKS_PER_THREAD, njobs // MIN_JOBS_PER_CHUNK))


def run_dynamic(work: Callable[[int, int], Any], parts: list[tuple[int, int]], nthreads: int) -> None:
    """``work(lo, hi)`` for every range of ``parts`` exactly once, on ``nthreads``
    threads (the caller included) that each take the next range from a shared
    counter until none is left. Exceptions are re-raised in the caller."""
    counter = itertools.count()
    nparts = len(parts)

    def worker() -> None:
        while True:
            i = next(counter)  # atomic under the GIL
            if i >= nparts:
                return
            work(*parts[i])

    helpers = min(nthreads, nparts) - 1
    if helpers <= 0:
        worker()
        return
    pool = _get_pool()
    futures = [pool.submit(worker) for _ in range(helpers)]
    try:
        worker()
    finally:
        for f in futures:
            f.result()


def parallel_for(kernel: Callable[..., Any], njobs: int, *args: Any) -> None:
    """``kernel(lo, hi, *args)`` over ``[0, njobs)``, dynamically spread over the threads.

    ``kernel`` must release the GIL (``@njit(nogil=True)``) and its jobs must
    write disjoint outputs.
    """
    nthreads = numba.get_num_threads()
    parts = chunks(njobs, chunk_count(njobs, nthreads))
    if len(parts) == 1:
        kernel(0, njobs, *args)
        return
    run_dynamic(lambda lo, hi: kernel(lo, hi, *args), parts, nthreads)
