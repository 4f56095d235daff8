"""BLAS products on the case's threads: how the BLAS built-ins use them.

:func:`matmul` computes ``out[i] = a[i] @ b[i]`` for a stack of matrices as
numpy's ``matmul`` does, on the case's threads, one thread per grain of work
(:mod:`.grain`), in one of two ways, chosen per machine (:func:`active_split`):

- ``blocks`` (the default): the matrices of the stack, and rows or columns of
  each (whichever dimension is longer) when the stack is shorter than the
  threads, are blocks that the threads of :mod:`._parallel` take in turn,
  each one BLAS call at one thread (:func:`._parallel.parallel_numpy`);
- ``blas``: each product worth two grains goes whole to BLAS's own threads,
  one after another, after parking the pool's helpers (a helper still
  polling after the numba copy would hold the core BLAS's worker needs);
  smaller products are split as under ``blocks`` (:func:`blas_share`).

Why both, and why per machine (issue 31, docs/threads.md). A block repacks
BLAS's other operand and the threads meet only at the end, so blocks lose
only a busy core's share on a shared VM; but on a quiet Zen 1 VM they scaled
im2col's single product 0.86-1.21x at two threads, where BLAS's own threads
scaled it 1.55-1.94x. BLAS splits a GEMM statically and meets at barriers:
on the Zen 4 VM, with another process on one core, one such GEMM ran 18x
slower on two threads than on one (48 ms against 2.7 ms, a 3x3 256->256
14x14 layer), while on the Zen 1 VM under the same load BLAS's threads still
beat the blocks (0.86x and 1.70x against 0.70x and 0.68x). So ``convbench
tune`` times both on im2col-sized products, quiet and with one core busy
(:mod:`.split_tune`), and picks ``blas`` only where it wins both; the
choice is cached under ``cpu_key()`` + ``" | blas-split"``.
``CONVBENCH_BLAS_SPLIT=blocks|blas`` forces one. BLAS's threads sleep between
calls; waking them is inside the timed call, as it is for a user's.

On one thread (the case's, or the grain's for a small product) it is one
``matmul`` call with BLAS at one thread: exactly the unsplit product.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import numpy as np

from ..machine.blas import blas_single_threaded, blas_threads
from ._parallel import note_threads, park, parallel_numpy
from .grain import threads_for

#: The environment variable that forces how BLAS products use the threads: ``blocks`` or ``blas``.
ENV_VAR = "CONVBENCH_BLAS_SPLIT"
#: Suffix of the choice's key in the tune cache (after ``cpu_key()``).
KEY_SUFFIX = " | blas-split"
MODES = ("blocks", "blas")
#: Before ``convbench tune``: the pool's blocks, which no busy core can stall at a barrier.
DEFAULT = "blocks"

_active: tuple[str, str] | None = None  # (mode, where it came from)
_least: float | None = None  # the least product BLAS's threads take (tuned), None: from two grains


def active_split() -> tuple[str, str]:
    """How BLAS products use more than one thread here, and why: ``(mode, source)``,
    ``source`` one of ``env CONVBENCH_BLAS_SPLIT``, ``tuned``, ``default`` (resolved once)."""
    global _active, _least
    if _active is None:
        from .configs import tuned_entry

        entry = tuned_entry(KEY_SUFFIX) or {}
        least = entry.get("blas_flops")
        _least = float(least) if isinstance(least, (int, float)) else None
        forced = os.environ.get(ENV_VAR, "").strip()
        if forced:
            if forced not in MODES:
                raise ValueError(f"{ENV_VAR} must be one of {', '.join(MODES)}, got {forced!r}")
            _active = (forced, f"env {ENV_VAR}")
        else:
            mode = entry.get("mode")
            _active = (mode, "tuned") if mode in MODES else (DEFAULT, "default")
    return _active


def reset_split() -> None:
    """Forget the resolved choice (after ``tune`` or in tests)."""
    global _active, _least
    _active = _least = None


#: The fewest rows (or columns) a block of one matrix holds: BLAS packs its
#: other operand per call, a cost against the block's own work that falls with
#: its rows (224 x 256 @ 256 x 256 on one thread: 285 us whole, 296 us in blocks
#: of 112 rows, 351 us in blocks of 32). At 128, a 5x5 64->64 14x14 layer's
#: 196 x 1600 @ 1600 x 64 product stayed one block and im2col ran it at 0.77x
#: on two threads against one; in two blocks of 98 rows, 1.45x (Zen 4 VM).
MIN_BLOCK = 64
#: Blocks per thread to aim for when the stack is short: two, so a faster core
#: can take more of them, and no more, as each block repacks its operands (on
#: the quiet VM four a thread scaled im2col's 1x1 layers 1.55-1.58x, one a
#: thread 1.66-1.70x; two, between balance and repacking, is not measured apart).
BLOCKS_PER_THREAD = 2


def blas_share(flops_each: float) -> int:
    """Threads to give BLAS's own pool for each of a stack's products of ``flops_each``
    operations, one product after another: the grain's count for one product
    (:func:`.grain.threads_for`) where this machine's split is ``blas``, else 1 (the
    pool's blocks). A product below two grains stays on the pool, whose blocks beat
    BLAS's threads there (16 x 196x64x64 at two threads, Zen 1 VM: 1.48x against
    1.28x; 16 x 49x256x256: 1.19x against 1.64x); so does one below the least product
    on which ``convbench tune`` found BLAS's two threads beating its one
    (:func:`.split_tune.blas_crossover`: 0.52x at 5 MFLOP on the Zen 3 VM)."""
    if active_split()[0] != "blas" or (_least is not None and flops_each < _least):
        return 1
    return threads_for(flops=flops_each)


@contextlib.contextmanager
def on_blas_threads(n: int) -> Iterator[None]:
    """Run the block's BLAS calls on BLAS's own ``n`` threads (:func:`blas_share`'s
    count): the pool's helpers parked first (a helper still polling after a numba
    step would hold the core BLAS's worker needs), BLAS back at its count after."""
    park()
    note_threads(n)
    with blas_threads(n):
        yield


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[i] = a[i % len(a)] @ b[i]`` for 3-D stacks ``a`` (A, M, K), ``b`` (B, K, N)
    and ``out`` (B, M, N), where ``A`` divides ``B`` (``a``'s matrices cycle: one
    group's weights against every image's columns), on the case's threads.
    Views are fine (each matrix needs unit stride in its last axis for BLAS to
    take it). Returns ``out``."""
    if a.ndim != 3 or b.ndim != 3 or out.ndim != 3:
        raise ValueError(f"split_gemm.matmul takes 3-D stacks, got a{a.shape}, b{b.shape}, out{out.shape}")
    na, m, kd = a.shape
    nb, n = b.shape[0], b.shape[2]
    if na < 1 or nb % na or b.shape[1] != kd or out.shape != (nb, m, n):
        raise ValueError(f"split_gemm.matmul: a{a.shape} @ b{b.shape} does not make out{out.shape}")
    flops = 2.0 * nb * m * n * kd

    def whole(lo: int, hi: int) -> None:
        # matrices [lo, hi) in as few matmul calls as a's cycle allows (numpy loops inside)
        if hi - lo == 1:  # one product: 2-D operands, numpy's plainest path to BLAS
            np.matmul(a[lo % na], b[lo], out=out[lo])
            return
        if na == 1:
            np.matmul(a[0], b[lo:hi], out=out[lo:hi])
            return
        i = lo
        while i < hi:
            j = min(hi, (i // na + 1) * na)
            np.matmul(a[i % na : i % na + j - i], b[i:j], out=out[i:j])
            i = j

    share = blas_share(flops / nb)
    if share > 1:
        with on_blas_threads(share):
            for i in range(nb):
                np.matmul(a[i % na], b[i], out=out[i])
        return out
    threads = threads_for(flops=flops, python=True)  # the pool's blocks are Python calls
    if threads == 1:  # the unsplit product, BLAS at one thread (it is, in a one-thread case)
        with blas_single_threaded():
            whole(0, nb)
        return out
    rows = m >= n  # split the longer dimension of each matrix, if the stack is too short
    length = m if rows else n
    blocks = max(1, min(-(-BLOCKS_PER_THREAD * threads // nb), length // MIN_BLOCK))
    if nb == 1 and blocks > threads:
        blocks -= blocks % threads  # whole rounds: no thread left alone with a last block
    size = -(-length // blocks)
    blocks = -(-length // size)

    def split(lo: int, hi: int) -> None:
        for job in range(lo, hi):
            i, blk = divmod(job, blocks)
            s = slice(blk * size, min(length, (blk + 1) * size))
            if rows:
                np.matmul(a[i % na, s], b[i], out=out[i, s])
            else:
                np.matmul(a[i % na], b[i][:, s], out=out[i][:, s])

    parallel_numpy(whole if blocks == 1 else split, nb * blocks, flops=flops)
    return out
