"""``convbench tune``'s measurement of the grain (:mod:`convbench.kernels.grain`):
how much work pays for a second thread on this machine, found by timing
real kernels at 1 and 2 threads, interleaved, on growing sizes.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from . import grain
from .grain import KEY_SUFFIX, Grain


def _crossover(make: Callable[[int], tuple[Callable[[], object], float]], sizes: list[int],
               margin: float, budget_s: float) -> float | None:
    """The work at which two threads first beat one by ``margin``: the smallest size
    whose ratio (median of per-round ratios, interleaved, each timed call after an
    untimed one at the same count) reaches it, confirmed by the next size, and
    interpolated (log work, linear ratio) from the size before it, which did not:
    sizes double, and on the Zen 3 VM the GEMM's ratio at 4.2 MFLOP sat at the margin
    (1.11-1.14 in four passes), so the first win fell on 4.2 or 8.4 by chance. ``None``
    when none does within ``budget_s``."""
    from ..machine.threads import limit_threads

    deadline = time.perf_counter() + budget_s
    seen: list[tuple[float, float]] = []  # (work, ratio) of each size in turn
    for size in sizes:
        call, work = make(size)
        with limit_threads(1):
            call()
        with limit_threads(2):
            call()
        ratios = []
        for r in range(15):
            times = {}
            for t in ((1, 2) if r % 2 == 0 else (2, 1)):
                with limit_threads(t):
                    # untimed first: switching the count (0.6 ms) sends the helpers to sleep, and a
                    # sweep's samples, which follow each other, find them awake
                    call()
                    t0 = time.perf_counter()
                    call()
                    times[t] = time.perf_counter() - t0
            ratios.append(times[1] / times[2])
        seen.append((work, float(np.median(ratios))))
        if len(seen) >= 2 and min(seen[-1][1], seen[-2][1]) >= margin:
            return _interpolated(seen[-3] if len(seen) >= 3 else None, seen[-2], margin)
        if time.perf_counter() > deadline:
            break
    return None


def _interpolated(below: tuple[float, float] | None, won: tuple[float, float], margin: float) -> float:
    """The work where the ratio reaches ``margin`` between a size that did not (``below``)
    and the first that did (``won``); ``won``'s work when there is none before it."""
    if below is None:
        return won[0]
    (w0, r0), (w1, r1) = below, won
    return float(w0 * (w1 / w0) ** ((margin - r0) / (r1 - r0)))


def measure(budget_s: float = 10.0, margin: float = 1.15) -> Grain | None:
    """Measure the grain here: on the GEMM micro-kernel (a 1x1 64->64 layer of
    growing pixel count) and on the im2row copy (a 3x3 64-channel layer of
    growing size), the work at which two threads first run ``margin`` times
    faster than one, halved (a thread's share), the median of :data:`PASSES`
    passes (each up to ``budget_s / 3``); and :attr:`Grain.python`, the same
    crossover of a step of Python calls (16 plane GEMMs of 64->64, Winograd F(2x2)'s shape, of a
    growing tile count, through :func:`._parallel.parallel_numpy`) over the
    GEMM's. ``None`` when this process has fewer than two threads or no size won
    within the budget (a busy machine): the caller keeps what it had."""
    import numba

    from ._parallel import parallel_numpy
    from .gemm import PackedGemm
    from .im2row import im2row

    if numba.config.NUMBA_NUM_THREADS < 2:
        return None
    rng = np.random.default_rng(0)
    b = rng.uniform(-1, 1, (64, 64)).astype(np.float32)
    gemm = PackedGemm(b)

    def gemm_case(m: int) -> tuple[Callable[[], object], float]:
        a = rng.uniform(-1, 1, (m, 64)).astype(np.float32)
        return (lambda: gemm(a)), 2.0 * m * 64 * 64

    def copy_case(hw: int) -> tuple[Callable[[], object], float]:
        x = rng.uniform(-1, 1, (1, hw, hw, 64)).astype(np.float32)
        col = np.empty((hw * hw, 9 * 64), np.float32)
        geometry = (3, 3, 1, 1, 1, 1, 1, 1, hw, hw)
        return (lambda: im2row(x, *geometry, 1, col)), float(col.nbytes + x.nbytes)

    def python_case(tiles: int) -> tuple[Callable[[], object], float]:
        v = rng.uniform(-1, 1, (16, tiles, 64)).astype(np.float32)
        u = rng.uniform(-1, 1, (16, 64, 64)).astype(np.float32)
        m = np.empty_like(v)
        flops = 2.0 * 16 * tiles * 64 * 64

        def call() -> None:
            parallel_numpy(lambda lo, hi: np.matmul(v[lo:hi], u[lo:hi], out=m[lo:hi]), 16, min_chunk=4,
                           flops=flops)
        return call, flops

    grain._active = Grain(0.0, 0.0, "measuring")  # every step on every thread while measuring
    try:
        flops = _median_of(PASSES, _crossover, gemm_case, [8 << i for i in range(12)], margin,
                           budget_s / 3)
        nbytes = _median_of(PASSES, _crossover, copy_case, [4, 6, 8, 11, 16, 22, 32, 45, 64, 90, 128],
                            margin, budget_s / 3)
        python = _median_of(PASSES, _crossover, python_case, [9 << i for i in range(10)], margin,
                            budget_s / 3)
    finally:
        grain.reset_grain()
    if flops is None or nbytes is None or python is None:
        return None
    return Grain(flops / 2, nbytes / 2, "tuned", python=max(1.0, python / flops))


#: Independent passes of each crossover; the grain takes their median. On the Zen 1 VM
#: single passes found the GEMM's crossover at 8.4 MFLOP in most passes, 4.2 or 16.8 in
#: some (the im2row copy's: 5.2 MB, 2.6 or 10.5): one noisy pass halved the grain, and a
#: Winograd F(2x2) step of 4.7 MFLOP then ran 0.82x on two threads; the median of three
#: is robust to one such pass either way, not to a run whose passes agree on the low one
#: (the next ``tune`` there: 4.2 in two of three).
PASSES = 3


def _median_of(passes: int, find: Callable[..., float | None], *args: Any) -> float | None:
    """The median of ``passes`` results of ``find(*args)``; ``None`` if any pass found none
    (the machine was too busy to say)."""
    found = [find(*args) for _ in range(passes)]
    return None if any(f is None for f in found) else float(np.median(found))


#: Seconds ``convbench tune`` spends measuring the grain (after the tiles).
TUNE_SECONDS = 12.0


def tune_grain(budget_s: float = TUNE_SECONDS, save: bool = True) -> dict[str, Any] | None:
    """:func:`measure` the grain and (``save``) cache it beside the tuned tiles;
    returns what was measured (``None``: nothing could be, and nothing changes)."""
    measured = measure(budget_s)
    if measured is None:
        return None
    entry = {"flops": measured.flops, "nbytes": measured.nbytes, "python": measured.python, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if save:
        from .configs import save_tuned_entry

        save_tuned_entry(KEY_SUFFIX, entry)
        grain.reset_grain()
    return entry


def forget_grain() -> bool:
    """Drop this CPU's measured grain from the cache; True if there was one."""
    from .configs import forget_tuned_entry

    gone = forget_tuned_entry(KEY_SUFFIX)
    grain.reset_grain()
    return gone
