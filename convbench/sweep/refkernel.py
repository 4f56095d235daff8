"""The reference kernel: a small fixed sgemm timed at the start of every round,
whose time every sample of the round carries (the machine's speed at that moment)."""

from __future__ import annotations

import time

import numpy as np

#: The reference kernel: a float32 sgemm of this size through numpy's BLAS
#: (2*128^3 = 4.2 MFLOP, tens of microseconds: cheap beside a round, long
#: enough for the timer), on the case's threads and core.
REF_N = 128
REF_FLOPS = 2 * REF_N**3


class ReferenceKernel:
    """The fixed sgemm timed at the start of every round, warm."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal((REF_N, REF_N), dtype=np.float32)
        self.b = rng.standard_normal((REF_N, REF_N), dtype=np.float32)
        self.c = np.empty((REF_N, REF_N), np.float32)
        np.matmul(self.a, self.b, out=self.c)

    def time(self) -> float:
        # an untimed call first: the previous round's algorithms evicted the operands
        # from cache, and timed cold the kernel measured what ran before it (70 against
        # 150 us, by the rotation's order), not the machine's speed
        np.matmul(self.a, self.b, out=self.c)
        t0 = time.perf_counter()
        np.matmul(self.a, self.b, out=self.c)
        return time.perf_counter() - t0
