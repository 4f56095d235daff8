"""Run a numba kernel over a range of jobs on ``numba.get_num_threads()`` cores.

Why not ``prange``: every ``parallel=True`` function costs about 1.5 s more
to compile than the same loop without it (measured 2.1 s against 0.6 s for
the GEMM driver), and with four kernels in two dtypes that alone exceeded
the 20 s cold-compile budget. The kernels here are plain
``@njit(nogil=True)`` functions whose first argument is a *work counter*
(:func:`new_work`); this module calls each kernel once on every thread of a
persistent pool of polling helpers (:class:`_Pool`; the calling thread
works too). It honours
``numba.set_num_threads`` exactly as ``prange`` does, so
``convbench.machine.threads.limit_threads`` governs these kernels too, and
with one thread the kernel is called directly with no pool involved.

Why dynamic: on a VM the cores do not run at the same speed (measured on
the 2-vCPU Xeon: 25 against 54 GFLOP/s at the same moment), so one equal
chunk per thread runs at the slow core's pace. The jobs are cut into
:func:`chunk_count` chunks, several per thread, and every thread takes the
next chunk from the shared counter until none is left, so a fast core
simply takes more chunks. The counter is claimed inside the compiled
kernel with an atomic add (:func:`next_chunk`), not in Python: taking a
chunk in Python meant taking the GIL between chunks, and the two threads
waking each other for it cost more than the chunks gained (the Winograd
F(4x4) input transform of a 64-channel 56x56 layer: 251 us on 2 threads
with 16 Python-claimed chunks, 209 us with 2 static halves, 335 us on one).

How many threads: :func:`parallel_for` and :func:`parallel_numpy` take the
step's work (``flops`` and/or ``nbytes``) and run it on one thread per
grain of it (:mod:`convbench.kernels.grain`, measured by ``convbench
tune``), never more than the case's threads: a small step is not split into
pieces smaller than the cost of waking a thread.

One thread budget: numpy/BLAS work that a built-in splits over the threads
(:func:`parallel_numpy`) runs each chunk with BLAS at one thread, so the
pool's threads times BLAS's never exceed the case's count, and BLAS's own
threads (which sleep between calls, ``OPENBLAS_THREAD_TIMEOUT=4``) are not
woken once per small GEMM. A step that hands the cores to another pool
(scipy.fft's ``workers``; the sweep before a peer's sample) first calls
:func:`park`, so helpers polling for the next task do not take a core from
that pool (see ``docs/threads.md``).

A kernel reads::

    @njit(nogil=True, cache=True)
    def my_jobs(work, ...):
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                return
            for job in range(lo, hi):
                ...
            chunk_done(work, lo, hi)
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

import numba
import numpy as np
from numba import njit

from ._intrinsics import atomic_read, fetch_add
from .grain import threads_for

#: Chunks per thread: enough that a core twice as fast as the other ends
#: within about one chunk of it; a chunk costs two atomic adds.
CHUNKS_PER_THREAD = 16
#: How long an idle helper polls for the next task before it sleeps on a
#: condition variable, in reads of an atomic (about a millisecond). Waking a
#: sleeping thread took 18 us on the 2-vCPU VM, 40% of a 50 us transform; a
#: sweep's calls follow each other within microseconds, so polling briefly
#: catches them (as OpenMP runtimes do, KMP_BLOCKTIME), and a helper left
#: idle still goes to sleep. The polling is CPU time of the process: a
#: process-CPU clock over a multi-threaded call counts it.
SPIN_POLLS = 1 << 20
#: How long the poster of a numba task waits, in reads of an atomic (about
#: 35 us), for a helper that was polling to claim its first chunk before it
#: enters the kernel itself. Why wait: a helper that sees the task must take
#: the GIL to start the kernel; if the poster still holds it (dispatching its
#: own call), the helper sleeps on the GIL's condition variable and is woken
#: 15-30 us later on the 2-vCPU VMs, a third of a 100 us step. Waiting in a
#: compiled loop (no GIL) lets the helper take a free GIL at once; the poster
#: then finds it free too, as the helper is inside its compiled kernel. A
#: helper that does not come within the bound (preempted) is not waited for.
JOIN_POLLS = 1 << 15

# work[]: the shared state of one parallel_for
NEXT, NJOBS, SIZE, FINISHED = 0, 1, 2, 3
# ctl[]: the helpers of one parallel_for
TICKETS, ACTIVE, FAILED = 0, 1, 2


def chunk_count(njobs: int, nthreads: int, min_chunk: int = 1) -> int:
    """How many chunks ``njobs`` are cut into for ``nthreads`` threads: up to
    :data:`CHUNKS_PER_THREAD` a thread, none under ``min_chunk`` jobs unless
    that would leave a thread without one."""
    if nthreads <= 1:
        return 1
    many = min(nthreads * CHUNKS_PER_THREAD, njobs // max(1, min_chunk))
    return max(1, many, min(nthreads, njobs))


def new_work(njobs: int, nchunks: int) -> np.ndarray:
    """The shared counters of ``[0, njobs)`` cut into about ``nchunks`` equal
    chunks: ``[next job, njobs, chunk size, jobs finished]`` (int64)."""
    size = max(1, -(-njobs // max(1, nchunks)))
    return np.array([0, njobs, size, 0], dtype=np.int64)


@njit(nogil=True, cache=True)
def next_chunk(work):  # pragma: no cover - compiled
    """Claim the next chunk ``(lo, hi)`` of ``work``; ``lo >= hi`` when none is left."""
    size = work[SIZE]
    lo = fetch_add(work, NEXT, size)
    return lo, min(lo + size, work[NJOBS])


@njit(nogil=True, cache=True)
def chunk_done(work, lo, hi):  # pragma: no cover - compiled
    """Report the chunk ``(lo, hi)`` written: :func:`parallel_for` returns
    once every job is, without waiting for the threads themselves to return."""
    fetch_add(work, FINISHED, hi - lo)


@njit(nogil=True, cache=True)
def _add(arr, i, v):  # pragma: no cover - compiled
    return fetch_add(arr, i, v)


@njit(nogil=True, cache=True)
def _post_and_wait(generation, work, helpers, polls):  # pragma: no cover - compiled
    """Post the task (``generation[0] += 1``), then poll until ``helpers``
    chunks of ``work`` are claimed (the helpers are in their kernels, without
    the GIL) or ``polls`` reads have passed."""
    fetch_add(generation, 0, 1)
    want = helpers * work[SIZE]
    for _ in range(polls):
        if atomic_read(work, NEXT) >= want:
            return


@njit(nogil=True, cache=True)
def _release_and_poll(ctl, generation, seen, polls):  # pragma: no cover - compiled
    """``ctl[ACTIVE] -= 1`` (this helper has returned), then poll ``generation[0]``
    until it is not ``seen`` (a new task: returned), or ``generation[1]`` reaches
    ``seen`` (:func:`park` after the task this helper saw: ``seen`` is returned,
    and the helper sleeps), or ``polls`` reads have passed: one compiled call, so
    the helper holds no GIL meanwhile. While it polls it counts itself in
    ``generation[2]``, which tells a poster whether to wait for it (:data:`JOIN_POLLS`)."""
    if ctl.shape[0] > ACTIVE:
        fetch_add(ctl, ACTIVE, -1)
    fetch_add(generation, 2, 1)
    now = seen
    for _ in range(polls):
        now = atomic_read(generation, 0)
        if now != seen:
            break
        if atomic_read(generation, 1) >= seen:
            break
    fetch_add(generation, 2, -1)
    return now


@njit(nogil=True, cache=True)
def _wait_finished(work, ctl):  # pragma: no cover - compiled
    """Poll until every job of ``work`` is finished or a helper failed."""
    while atomic_read(work, FINISHED) < work[NJOBS] and atomic_read(ctl, FAILED) == 0:
        pass


@njit(nogil=True, cache=True)
def _wait_returned(ctl):  # pragma: no cover - compiled
    """Poll until no helper is running this task (after a failure)."""
    while atomic_read(ctl, ACTIVE) != 0:
        pass


_NO_TASK = np.zeros(0, np.int64)


class _Pool:
    """``NUMBA_NUM_THREADS - 1`` persistent helper threads.

    A task is posted by bumping ``generation``; each helper takes one of the
    task's tickets (so only ``nthreads - 1`` join), counts itself in
    ``ctl[ACTIVE]`` while it runs the task, and goes back to polling. The
    poster runs the task too and then waits until every job is finished
    (``work[FINISHED]``), not until the helpers have returned: a helper
    needs the GIL to return from a kernel, and the poster holds it. A helper
    that joins late finds no chunk left and returns.
    """

    def __init__(self, nhelpers: int) -> None:
        # [0]: the task's generation; [1]: the generation at the last park(): a helper
        # that has seen no newer task sleeps (a store, so a helper late to a task still sees it);
        # [2]: helpers polling for a task now
        self.generation = np.array([0, -1, 0], np.int64)
        self.cond = threading.Condition()
        self.task: tuple[Callable[[], Any], np.ndarray, int, list[BaseException]] | None = None
        for i in range(nhelpers):
            threading.Thread(target=self._helper, name=f"convbench-{i}", daemon=True).start()

    def _helper(self) -> None:
        seen = 0
        done = _NO_TASK  # the ctl of the task just run, released by the next poll
        while True:
            now = _release_and_poll(done, self.generation, seen, SPIN_POLLS)
            if now == seen:  # no task within the polling time, or park(): sleep until one
                with self.cond:
                    while self.generation[0] == seen:
                        self.cond.wait()
            done = _NO_TASK
            seen = int(self.generation[0])
            assert self.task is not None
            fn, ctl, helpers, errors = self.task
            if _add(ctl, TICKETS, 1) >= helpers:
                continue
            _add(ctl, ACTIVE, 1)
            done = ctl
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the poster
                errors.append(exc)
                _add(ctl, FAILED, 1)

    def run(self, fn: Callable[[], Any], work: np.ndarray, nthreads: int, join: bool = False) -> None:
        ctl = np.zeros(3, np.int64)
        errors: list[BaseException] = []
        polling = int(self.generation[2]) if join else 0
        with self.cond:
            self.task = (fn, ctl, nthreads - 1, errors)
            if not polling:
                self.generation[0] += 1
                self.cond.notify_all()
        if polling:
            # posted without the GIL, so that polling helpers find it free
            _post_and_wait(self.generation, work, min(polling, nthreads - 1), JOIN_POLLS)
            with self.cond:
                self.cond.notify_all()  # any helper asleep meanwhile
        try:
            fn()
        except BaseException:
            _add(work, NEXT, work[NJOBS])  # no chunk is claimed from now on
            _wait_returned(ctl)
            raise
        _wait_finished(work, ctl)
        if errors:
            _wait_returned(ctl)
            raise errors[0]


_pool: _Pool | None = None
_lock = threading.Lock()


def _get_pool() -> _Pool:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = _Pool(max(1, int(numba.config.NUMBA_NUM_THREADS) - 1))
    return _pool


def _forget_pool() -> None:
    # a forked child has none of its parent's threads
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


#: The most threads any parallel step ran on since :func:`threads_used` last read it.
_most_threads = 0


def threads_used(reset: bool = True) -> int:
    """The most threads one parallel step of this module ran on since the last
    read (0: none ran): what the case's calls really used, grain included."""
    global _most_threads
    n = _most_threads
    if reset:
        _most_threads = 0
    return n


def note_threads(n: int) -> None:
    """Count a step run on ``n`` threads outside the pool (BLAS's own) in :func:`threads_used`."""
    global _most_threads
    _most_threads = max(_most_threads, n)


def park() -> None:
    """Send the helpers that are polling for the next task to sleep now.

    Called before a step that hands the cores to another thread pool
    (scipy.fft's workers, BLAS's own threads, a library's): a helper polling
    for up to a millisecond after the last step would hold a core that pool
    needs. The next parallel step wakes them (a sleeping thread's wake-up is
    then part of that step's time)."""
    if _pool is not None:
        _pool.generation[1] = _pool.generation[0]


def run_threads(fn: Callable[[], Any], work: np.ndarray, nthreads: int, join: bool = False) -> None:
    """``fn()`` on up to ``nthreads`` threads (the caller's first), returning
    when every job of ``work`` is finished.

    ``fn`` must take its chunks with :func:`next_chunk`, report each with
    :func:`chunk_done` and return when none is left. Exceptions are
    re-raised in the caller. ``join``: ``fn`` runs a compiled kernel that
    claims its first chunk without the GIL, so the caller lets polling
    helpers claim theirs before it starts (:data:`JOIN_POLLS`); a Python
    ``fn`` holds the GIL after its claim, and waiting for it would only move
    the sleep on the GIL from the helper to the caller."""
    global _most_threads
    if nthreads > _most_threads:
        _most_threads = nthreads
    if nthreads <= 1:
        fn()
        return
    _get_pool().run(fn, work, nthreads, join)


def parallel_for(kernel: Callable[..., Any], njobs: int, *args: Any, min_chunk: int = 1,
                 flops: float = 0.0, nbytes: float = 0.0) -> None:
    """``kernel(work, *args)`` on the threads, the jobs ``[0, njobs)`` of
    ``work`` taken chunk by chunk (see the module docstring).

    ``kernel`` must release the GIL (``@njit(nogil=True)``) and its jobs must
    write disjoint outputs. ``min_chunk``: the fewest jobs that pay for what
    a chunk loads (see :func:`chunk_count`). ``flops`` / ``nbytes``: the
    step's whole work, which sets how many threads it gets
    (:func:`convbench.kernels.grain.threads_for`); neither given: every
    thread of the case.
    """
    nthreads = threads_for(flops, nbytes)
    nchunks = chunk_count(njobs, nthreads, min_chunk)
    work = new_work(njobs, nchunks)
    run_threads(lambda: kernel(work, *args), work, min(nthreads, nchunks), join=True)


def parallel_numpy(body: Callable[[int, int], Any], njobs: int, *, min_chunk: int = 1,
                   flops: float = 0.0, nbytes: float = 0.0) -> None:
    """``body(lo, hi)`` (Python: numpy and BLAS calls, which release the GIL) for
    chunks ``[lo, hi)`` of ``[0, njobs)`` on the threads, BLAS at one thread
    meanwhile; ``flops``/``nbytes`` as in :func:`parallel_for`, against the grain of
    Python steps (:attr:`.grain.Grain.python`). ``min_chunk``:
    the fewest jobs a chunk holds, strictly (unlike :func:`parallel_for`): a
    range of fewer than two chunks' jobs runs on one thread, since every chunk
    is a Python call that takes the GIL, and a thread that finds the GIL held
    sleeps 15-30 us on the 2-vCPU VMs (gemm-direct's taps, split into
    112-row halves on a 14x14 layer, ran 0.6x at two threads).

    This is how the built-ins that call BLAS use the case's cores: many
    single-threaded BLAS calls on the pool, not BLAS's own threads. A batch of
    small GEMMs (Winograd's 16, FFT's per frequency, gemm-direct's taps) split
    by BLAS paid a sleeping thread's wake-up and a barrier in every GEMM, and
    BLAS's threads and the pool's polling helpers took turns on the cores.
    Chunks must write disjoint outputs."""
    from ..machine.blas import blas_single_threaded

    nthreads = min(threads_for(flops, nbytes, python=True), max(1, njobs // max(1, min_chunk)))
    nchunks = chunk_count(njobs, nthreads, min_chunk)
    if min(nthreads, nchunks) <= 1:  # the whole range at once: no counter to claim from
        global _most_threads
        _most_threads = max(_most_threads, 1)
        with blas_single_threaded():
            body(0, njobs)
        return
    work = new_work(njobs, nchunks)

    def task() -> None:
        while True:
            lo, hi = next_chunk(work)
            if lo >= hi:
                return
            body(lo, hi)
            chunk_done(work, lo, hi)

    with blas_single_threaded():
        run_threads(task, work, min(nthreads, nchunks))


def parallel_numpy_blocks(body: Callable[[int, int], Any], njobs: int, *, nbytes: float) -> None:
    """:func:`parallel_numpy` in one block of jobs a thread (one thread per grain of the
    ``nbytes`` a step moves): for steps whose every block is a numpy or scipy call that takes
    the GIL, where more blocks only trade the GIL between threads more often."""
    threads = threads_for(nbytes=nbytes, python=True)
    parallel_numpy(body, njobs, min_chunk=max(1, njobs // threads), nbytes=nbytes)
