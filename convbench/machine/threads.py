"""Every thread pool set at once: numba, BLAS (threadpoolctl) and FFT workers.

A measured case runs inside :func:`limit_threads`. Algorithms that use
``scipy.fft`` pass ``workers=convbench.machine.threads.fft_workers()``; numba
``prange`` code follows ``numba.set_num_threads``; BLAS follows threadpoolctl.
:func:`thread_report` says what the pools really are, so a case with
``threads=1`` is checked, not assumed, to use one core.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator

_fft_workers: int | None = None


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where known)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def max_threads() -> int:
    """The most threads a case may ask for: numba's pool size (NUMBA_NUM_THREADS)."""
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


def fft_workers() -> int:
    """The ``workers=`` an FFT call should use: the case's thread count, or all cores outside one."""
    return _fft_workers if _fft_workers is not None else available_cores()


def sync_torch_threads() -> None:
    """Give torch's intra-op pool the case's thread count (the one FFTs use): torch
    is imported late, possibly inside a :func:`limit_threads` block that could not see it."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(fft_workers())


def check_thread_count(n: Any) -> int:
    """``n`` if it is a thread count (an int >= 1), else ``ValueError``; whether the
    machine can run that many is :func:`check_threads`' question, asked per case."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"must be a thread count (an int >= 1), got {n!r}")
    return n


def check_threads(n: int) -> str | None:
    """``None`` if ``n`` threads can be set, else a reason (for a ``skipped`` row)."""
    if n < 1:
        return f"threads={n} is not a positive count"
    limit = max_threads()
    if n > limit:
        return (
            f"threads={n} exceeds numba's pool of {limit} "
            "(set NUMBA_NUM_THREADS before starting to allow more)"
        )
    return None


@contextlib.contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` threads in numba, BLAS/OpenMP and FFT; restore after."""
    global _fft_workers
    import numba
    from threadpoolctl import threadpool_limits

    reason = check_threads(n)
    if reason:
        raise ValueError(reason)
    old_numba = numba.get_num_threads()
    old_fft = _fft_workers
    # torch keeps its own intra-op count; set it only where torch is already in use
    torch = sys.modules.get("torch")
    old_torch = torch.get_num_threads() if torch is not None else None
    limiter = threadpool_limits(limits=n)
    try:
        numba.set_num_threads(n)
        _fft_workers = n
        if torch is not None:
            torch.set_num_threads(n)
        yield
    finally:
        _fft_workers = old_fft
        numba.set_num_threads(old_numba)
        if torch is not None:
            torch.set_num_threads(old_torch)
        limiter.restore_original_limits()


def thread_report() -> dict[str, Any]:
    """The pools as they are now: numba threads, FFT workers, each BLAS/OpenMP pool."""
    import numba
    from threadpoolctl import threadpool_info

    pools = [
        {k: info.get(k) for k in ("user_api", "internal_api", "num_threads", "version", "filepath")}
        for info in threadpool_info()
    ]
    blas = [p["num_threads"] for p in pools if p["user_api"] == "blas"]
    torch = sys.modules.get("torch")
    return {
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": _threading_layer(),
        "fft_workers": fft_workers(),
        "blas_threads": max(blas) if blas else None,
        "pools": pools,
    }


def _threading_layer() -> str | None:
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        return None


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[int | None]:
    """Run the block on core ``cpu`` alone (``None``: as it is); restore the affinity after.

    A one-thread case is pinned so the scheduler cannot move it between two
    vCPUs that run at different speeds in the middle of a measurement. Yields
    the core it runs on, or ``None`` where affinity cannot be set.
    """
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    old = os.sched_getaffinity(0)
    if cpu not in old:
        raise ValueError(f"cannot pin to core {cpu}: this process may run on cores {sorted(old)}")
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, old)


def allowed_cores() -> list[int]:
    """The cores this process may run on, in order (``[0 .. n-1]`` where unknown)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return list(range(os.cpu_count() or 1))
