"""BLAS's thread count inside a timed call: set and put back in microseconds.

:func:`convbench.machine.threads.limit_threads` sets BLAS for a whole case
through threadpoolctl (milliseconds: it reads every loaded library). Inside
a call, :func:`convbench.kernels._parallel.parallel_numpy` runs BLAS on every
thread of the kernels' pool and so must run it on one thread each
(:func:`blas_threads`): the controllers are found once and the count this
module last set is remembered, so a block that changes nothing costs nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator


_blas_libs: list[Any] | None = None
#: BLAS's thread count as limit_threads / blas_threads last set it (None: not known, ask the library).
_blas_now: int | None = None


def noted(n: int | None) -> int | None:
    """Remember that BLAS is now at ``n`` threads (``limit_threads`` set it); return the count before."""
    global _blas_now
    before, _blas_now = _blas_now, n
    return before


def _blas_controllers() -> list[Any]:
    # threadpoolctl's controllers of the BLAS libraries loaded now (numpy's among
    # them), found once: finding them reads every loaded library (~ms), setting
    # one is a C call (~3 us)
    global _blas_libs
    if _blas_libs is None:
        from threadpoolctl import ThreadpoolController

        _blas_libs = [lc for lc in ThreadpoolController().lib_controllers if lc.user_api == "blas"]
    return _blas_libs


def blas_threads_set() -> int | None:
    """BLAS's thread count as :func:`~convbench.machine.threads.limit_threads` / :func:`blas_threads` last set
    it in this process (``None``: neither has, so not known without asking)."""
    return _blas_now


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run the block with BLAS at ``n`` threads and put it back after: cheap
    enough (a few microseconds) for a timed call. Used by
    :func:`convbench.kernels._parallel.parallel_numpy`, whose chunks call BLAS
    on every thread of the pool and so must each call it on one: the pool's
    threads x BLAS's stay within the case's count."""
    global _blas_now
    if _blas_now == n:  # inside limit_threads(n) (or a block like this one): nothing to do
        yield
        return
    changed = []
    for lc in _blas_controllers():
        old = lc.get_num_threads()
        if old != n:
            lc.set_num_threads(n)
            changed.append((lc, old))
    before, _blas_now = _blas_now, n
    try:
        yield
    finally:
        _blas_now = before
        for lc, old in reversed(changed):
            lc.set_num_threads(old)
