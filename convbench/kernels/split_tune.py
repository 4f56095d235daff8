"""``convbench tune``'s choice of how one BLAS product uses two threads
(:mod:`convbench.kernels.split_gemm`): the pool's blocks or BLAS's own threads,
timed on im2col-sized products, quiet and with one core busy; and, where BLAS's
threads win, the least product they take (their own crossover, below which a
product stays on the pool).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from typing import Any, Iterator

import numpy as np

from . import split_gemm
from .split_gemm import KEY_SUFFIX, MODES

#: Products timed (M, K, N): im2col's GEMMs of a 3x3 256->256 14x14 layer and a
#: 3x3 64->64 56x56 one, the shapes whose scaling issue 31 measured.
SHAPES = [(196, 2304, 256), (3136, 576, 64)]
#: BLAS's threads must beat the blocks by this much on a quiet machine to be chosen.
MARGIN = 0.95
#: Products of 3x3 128->128 layers of 7x7 to 56x56 output pixels (M, 1152, 128; 14-462 MFLOP):
#: where two of BLAS's own threads first beat one by :data:`CROSSOVER_MARGIN`. They sleep between
#: calls, and waking them is in every call: on the Zen 3 VM, 2 threads against 1 ran 0.52x at
#: 5 MFLOP, 0.85x at 40, 0.94x at 116 and 1.91x at 231 (im2col's products); the numba pool's
#: grain was 2 MFLOP a thread, so BLAS's threads had taken products from 4 MFLOP up.
CROSSOVER_ROWS = [49 << i for i in range(6)]
CROSSOVER_MARGIN = 1.15


def _spin(stop: Any) -> None:  # pragma: no cover - runs in a child process
    while not stop.is_set():
        pass


def _ratios(budget_s: float) -> list[float]:
    """Per shape, the median over interleaved rounds of time(blas) / time(blocks), at two threads."""
    from ..machine.threads import limit_threads

    rng = np.random.default_rng(0)
    cases = [(rng.uniform(-1, 1, (1, m, k)).astype(np.float32), rng.uniform(-1, 1, (1, k, n)).astype(np.float32),
              np.empty((1, m, n), np.float32)) for m, k, n in SHAPES]
    deadline = time.perf_counter() + budget_s
    ratios: list[list[float]] = [[] for _ in cases]
    with limit_threads(2):
        for r in range(40):
            for i, (a, b, out) in enumerate(cases):
                times = {}
                for mode in (MODES if r % 2 == 0 else MODES[::-1]):
                    split_gemm._active = (mode, "measuring")
                    split_gemm.matmul(a, b, out)  # untimed first: a sweep's samples follow each other
                    t0 = time.perf_counter()
                    split_gemm.matmul(a, b, out)
                    times[mode] = time.perf_counter() - t0
                ratios[i].append(times["blas"] / times["blocks"])
            if r >= 4 and time.perf_counter() > deadline:
                break
    return [float(np.median(v)) for v in ratios]


@contextlib.contextmanager
def one_core_busy() -> Iterator[None]:
    """A process spinning on one core for the block: a shared VM's busy neighbour."""
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    spinner = ctx.Process(target=_spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        time.sleep(0.2)  # running before the clock starts
        yield
    finally:
        stop.set()
        spinner.join(5)
        if spinner.is_alive():
            spinner.kill()


def choose(quiet: list[float], busy: list[float]) -> dict[str, Any]:
    """``blas`` where BLAS's threads' geometric-mean time over the shapes is below
    :data:`MARGIN` of the blocks' on a quiet machine and below the blocks' with a core
    busy (a static split waiting at a barrier for the busy core loses there); else ``blocks``."""
    q, b = (float(np.exp(np.mean(np.log(v)))) for v in (quiet, busy))
    return {"mode": "blas" if q < MARGIN and b < 1.0 else "blocks",
            "blas_over_blocks_quiet": q, "blas_over_blocks_busy": b}


def blas_crossover(budget_s: float) -> float | None:
    """The least product (flops) on which two of BLAS's own threads beat one by
    :data:`CROSSOVER_MARGIN`, over :data:`CROSSOVER_ROWS`; ``None`` where none does."""
    from ._parallel import park
    from .grain_tune import _crossover

    rng = np.random.default_rng(0)

    def case(m: int) -> tuple[Any, float]:
        a = rng.uniform(-1, 1, (m, 1152)).astype(np.float32)
        b = rng.uniform(-1, 1, (1152, 128)).astype(np.float32)
        out = np.empty((m, 128), np.float32)

        def call() -> None:  # as split_gemm's on_blas_threads: the pool parked, BLAS at the count
            park()
            np.matmul(a, b, out=out)

        return call, 2.0 * m * 1152 * 128

    return _crossover(case, CROSSOVER_ROWS, CROSSOVER_MARGIN, budget_s)


def measure(budget_s: float = 6.0) -> dict[str, Any] | None:
    """Time both ways on :data:`SHAPES` at two threads, quiet and then with
    :func:`one_core_busy`, a third of the budget each, and :func:`choose`; where that is
    ``blas``, BLAS's own crossover (:func:`blas_crossover`) in the last third: ``blas``
    stays only where there is one, and smaller products go to the pool. ``None`` when
    this process has fewer than two threads: the caller keeps what it had."""
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        return None
    try:
        quiet = _ratios(budget_s / 3)
        with one_core_busy():
            busy = _ratios(budget_s / 3)
    finally:
        split_gemm.reset_split()
    entry = {**choose(quiet, busy), "shapes": [list(s) for s in SHAPES]}
    if entry["mode"] == "blas":
        least = blas_crossover(budget_s / 3)
        entry["blas_flops"] = least
        if least is None:  # BLAS's two threads never beat its one on these products: the blocks
            entry["mode"] = "blocks"
    return entry


def tune_split(budget_s: float = 6.0, save: bool = True) -> dict[str, Any] | None:
    """:func:`measure` and (``save``) cache the choice beside the tuned tiles; returns
    what was measured (``None``: nothing could be, and nothing changes)."""
    entry = measure(budget_s)
    if entry is None:
        return None
    entry["when"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if save:
        from .configs import save_tuned_entry

        save_tuned_entry(KEY_SUFFIX, entry)
        split_gemm.reset_split()
    return entry


def forget_split() -> bool:
    """Drop this CPU's choice from the cache; True if there was one."""
    from .configs import forget_tuned_entry

    gone = forget_tuned_entry(KEY_SUFFIX)
    split_gemm.reset_split()
    return gone
