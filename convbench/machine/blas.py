"""BLAS's thread count inside a timed call: set and put back in microseconds.

:func:`convbench.machine.threads.limit_threads` sets BLAS for a whole case
through threadpoolctl (milliseconds: it reads every loaded library). Inside
a call, :func:`convbench.kernels._parallel.parallel_numpy` runs BLAS on every
thread of the kernels' pool and so must run it on one thread each
(:func:`blas_threads`): the controllers are found once and the count this
module last set is remembered, so a block that changes nothing costs nothing.

Inside a case, :func:`blas_single_threaded` lowers BLAS to one thread and
leaves it there: every built-in runs BLAS at one thread on each of the
pool's threads, so putting the case's count back after each step (about 5
us a step, two libraries set and reset) was a cost charged to every step of
every 2-thread call, a tenth of a 50 us layer. The count goes back when
something else may use BLAS's own threads (:func:`restore_blas`, before a
plugin's or a peer's sample) and at the end of the case (``limit_threads``
restores every pool).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator


_blas_libs: list[Any] | None = None
#: BLAS's thread count as limit_threads / blas_threads last set it (None: not known, ask the library).
_blas_now: int | None = None
#: The case's count while :func:`blas_single_threaded` has lowered BLAS below it (None: not lowered).
_lowered_from: int | None = None


def noted(n: int | None) -> int | None:
    """Remember that BLAS is now at ``n`` threads (``limit_threads`` set it, or
    restored it at a block's end: ``None`` outside every block); return the count before."""
    global _blas_now, _lowered_from
    before, _blas_now, _lowered_from = _blas_now, n, None
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


def _set_all(n: int) -> None:
    for lc in _blas_controllers():
        if lc.get_num_threads() != n:
            lc.set_num_threads(n)


@contextlib.contextmanager
def blas_single_threaded() -> Iterator[None]:
    """Run the block with BLAS at one thread. Inside a case (a ``limit_threads``
    block, which set the count) BLAS stays at one after the block, until
    :func:`restore_blas` or the case's end; outside one it is put back at once
    (:func:`blas_threads`), so a script calling an algorithm finds numpy as it left it."""
    global _blas_now, _lowered_from
    if _blas_now == 1:
        yield
        return
    if _blas_now is None:  # outside every case: nothing would put the count back
        with blas_threads(1):
            yield
        return
    _set_all(1)
    _lowered_from, _blas_now = _blas_now, 1
    yield


def restore_blas() -> None:
    """Put BLAS back at the case's count if :func:`blas_single_threaded` lowered it."""
    global _blas_now, _lowered_from
    if _lowered_from is not None:
        _set_all(_lowered_from)
        _blas_now, _lowered_from = _lowered_from, None


def warm_blas() -> None:
    """Run one 512^3 float64 and one float32 product through numpy's BLAS (about 25 ms):
    called once by every measuring process (a sweep's, its workers', ``benchmarks/kernels.py``)
    before it times anything.

    Why: on the Zen 1 VM (OpenBLAS 0.3.31 of scipy-openblas, its Haswell kernels) a fresh
    process ran some single-thread float32 products 1.7-3.3x slower, for as long as it
    lived, until a larger product had run: 196x2304x256 (im2col's GEMM of a 3x3
    256-channel 14x14 layer) took 21.7-22.7 ms, and 6.7-7.3 ms after a float64 product of
    that size or a two-thread float32 one (3136x576x64: 12.8 -> 7.4 ms; 1024^3 and small
    shapes alike before and after). In a sweep's process a 64^3 product did not do it, 256^3
    mostly (8.2 ms), 512^3 fully (7.3 ms). A sweep's first BLAS calls are im2col's, so a
    one-thread sweep timed its baseline 3x slow through the whole run, and every speedup over
    it was 3x too large. What inside OpenBLAS does this is not known here (transparent huge
    pages are madvise-only on that VM, so the buffers' first touches are the suspects)."""
    import numpy as np

    for dtype in (np.float64, np.float32):
        a = np.ones((512, 512), dtype)
        a @ a
