"""A read of more memory than the caches hold, on the kernels' pool: on the machine at
hand, the ceiling of a step that streams its data (FFT's products read their whole
weight spectrum once a call), at each thread count.

``benchmarks/kernels.py`` times it at two threads against one beside the machine's
sgemm: on a VM whose second vCPU adds arithmetic but little bandwidth, a streaming
step cannot scale past this ratio, however it is split (docs/threads.md).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numba import njit

from ._parallel import chunk_done, next_chunk, parallel_for

#: Rows the array is read in: one job each, claimed in chunks by the pool's threads.
ROWS = 4096


@njit(nogil=True, cache=True, fastmath=True)
def read_jobs(work, rows, sums):  # pragma: no cover - compiled
    """``sums[r] = rows[r].sum()`` for the rows of ``work``: fastmath lets LLVM vectorise the
    sum, so the loop is bound by the loads, not by the additions."""
    while True:
        lo, hi = next_chunk(work)
        if lo >= hi:
            return
        for r in range(lo, hi):
            s = np.float32(0.0)
            for i in range(rows.shape[1]):
                s += rows[r, i]
            sums[r] = s
        chunk_done(work, lo, hi)


def stream_read(nbytes: int = 256 << 20) -> Callable[[], float]:
    """A call that reads ``nbytes`` of ones (rounded down to whole rows) once, on as many of
    the case's threads as the grain gives that much data, and returns their sum."""
    rows = np.ones((ROWS, max(1, nbytes // 4 // ROWS)), np.float32)
    sums = np.empty(ROWS, np.float32)

    def call() -> float:
        parallel_for(read_jobs, ROWS, rows, sums, nbytes=float(rows.nbytes))
        return float(sums.sum(dtype=np.float64))

    return call
