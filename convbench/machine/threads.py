"""Every thread pool set at once: numba, BLAS (threadpoolctl) and FFT workers.

A measured case runs inside :func:`limit_threads`. Algorithms that use
``scipy.fft`` pass ``workers=convbench.machine.threads.fft_workers()``; numba
``prange`` code follows ``numba.set_num_threads``; BLAS follows threadpoolctl.
:func:`thread_report` says what the pools really are, so a case with
``threads=1`` is checked, not assumed, to use one core.

On "BLAS 12x slower at 2 threads after alternating 1 and 2" (issue 12):
measured on a quiet 16-core Xeon pinned to 2 cores, alternating
``limit_threads(1)``/``(2)`` call by call did not slow OpenBLAS (1x1
512->512 at 14x14: 0.79 ms alternating against 0.76 ms steady, torch loaded
or not, ``OPENBLAS_THREAD_TIMEOUT=4`` or unset). On the shared 2-vCPU VM
with other processes running (load 7-9), 2-thread OpenBLAS took 47-70 ms
against 1.4-1.8 ms on one thread whether the count alternated or not: its
threads meet at spin/yield barriers many times per call, and when another
process holds one vCPU every barrier waits for a scheduler slice. The cause
is contention for the cores, not the switch; no thread setting fixes it, so
``benchmarks/kernels.py`` judges 2-thread floors only where the machine's
own sgemm scales in the same run.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Callable, Iterator

from . import blas
from .blas import blas_threads, blas_threads_set  # noqa: F401 (part of this module's surface)

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


def case_threads() -> int:
    """The open :func:`limit_threads` block's count (all available cores outside one):
    what a library configured at ``prepare`` (an ONNX Runtime session) should use."""
    return _frames[-1]["n"] if _frames else available_cores()


def sync_torch_threads() -> None:
    """Put torch's intra-op pool under :func:`limit_threads` (set to the open
    block's count now): torch is imported late, possibly inside a block."""
    _torch_pool()


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


#: Thread pools of libraries other than numba/BLAS/FFT (a peer's torch or
#: ONNX Runtime), put under :func:`limit_threads` by :func:`add_pool`.
_pools: dict[str, tuple[Callable[[], int], Callable[[int], None]]] = {}
#: One frame per open :func:`limit_threads` block: its count and what to restore.
_frames: list[dict[str, Any]] = []


def add_pool(name: str, get: Callable[[], int], set_: Callable[[int], None]) -> None:
    """Put a library's thread pool under :func:`limit_threads` from now on.

    A peer calls this when it first imports its library (possibly inside a
    block, since libraries are imported at the first ``prepare``): the pool
    is set to the open block's count at once, and every block restores it
    on exit, so a case with ``threads=1`` runs the library on one thread and
    the process is left as it was found. Registering a name again is a no-op.
    """
    if name in _pools:
        return
    _pools[name] = (get, set_)
    for frame in _frames:  # outermost first: each exit restores what the enclosing block set
        frame["restore"].append((set_, get()))
        set_(frame["n"])


def _torch_pool() -> None:
    # torch imported by anyone (a peer, a plugin, a benchmark) follows the case too
    torch = sys.modules.get("torch")
    if torch is not None:
        add_pool("torch", torch.get_num_threads, torch.set_num_threads)


@contextlib.contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` threads in numba, BLAS/OpenMP, FFT and every
    pool of :func:`add_pool`; restore all of them after."""
    global _fft_workers
    import numba
    from threadpoolctl import threadpool_limits

    reason = check_threads(n)
    if reason:
        raise ValueError(reason)
    _torch_pool()
    old_numba = numba.get_num_threads()
    old_fft = _fft_workers
    frame: dict[str, Any] = {"n": n, "restore": [(set_, get()) for get, set_ in _pools.values()]}
    limiter = threadpool_limits(limits=n)
    blas_before = blas.noted(n)
    _frames.append(frame)
    try:
        numba.set_num_threads(n)
        _fft_workers = n
        for _, set_ in _pools.values():
            set_(n)
        yield
    finally:
        _frames.pop()
        _fft_workers = old_fft
        numba.set_num_threads(old_numba)
        for set_, old in reversed(frame["restore"]):
            set_(old)
        limiter.restore_original_limits()
        blas.noted(blas_before)


def pool_sample_start(clock: Callable[[], float], algorithm: str) -> float:
    """At a timed sample's start: before a peer's sample, park the kernels' pool
    (its helpers sleep, so the peer's own threads do not share the cores with
    helpers polling after convbench's last case); start counting the threads the
    pool's steps use (:func:`pool_threads_used`); return ``clock()``.

    convbench's own algorithms find the pool as the case before left it (polling
    for about a millisecond, then asleep): it is their pool. Parking it before
    each of their samples too made every sample wake a sleeping thread, which on
    the 2-vCPU VMs took 18 us at the median and 0.47 ms at the 90th percentile
    (an idle vCPU woken by the hypervisor).

    BLAS goes back to the case's count (:func:`blas.restore_blas`) before any
    sample but a built-in's: the built-ins run it at one thread per pool
    thread and leave it there; a plugin or a peer gets the case's threads."""
    from ..kernels._parallel import park, threads_used
    from ..registry import BUILTIN_MODULES, get_algorithm

    algo = get_algorithm(algorithm)
    peer = getattr(algo, "peer", False)
    if peer:
        park()
    if peer or type(algo).__module__ not in BUILTIN_MODULES:
        blas.restore_blas()
    threads_used(reset=True)
    return clock()


def pool_threads_used() -> int:
    """The most threads one step of the kernels' pool used since
    :func:`pool_sample_start` (0: the pool did not run). The grain may keep a
    small call on fewer threads than the case's: the sweep judges whether such
    a sample was preempted by the threads it used, not by the case's count."""
    from ..kernels._parallel import threads_used

    return threads_used(reset=False)


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
    from ..kernels.grain import active_grain
    from ..kernels.split_gemm import active_split

    split, split_source = active_split()
    return {
        "grain": active_grain().as_dict(),  # the work that pays for one more thread (kernels.grain)
        "blas_split": {"mode": split, "source": split_source},  # one BLAS product's threads (kernels.split_gemm)
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": _threading_layer(),
        "fft_workers": fft_workers(),
        "blas_threads": max(blas) if blas else None,
        "pools": pools,
        "library_threads": {name: get() for name, (get, _) in _pools.items()},
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
