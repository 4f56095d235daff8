"""Process settings that keep a measurement about the algorithm, not the allocator.

Two effects, both measured on this project's machine, distort per-call
timings of algorithms that allocate large temporaries or mix thread pools:

- glibc returns freed memory at the top of the heap to the OS (trimming),
  and serves large requests with fresh ``mmap`` pages; either way the next
  call's temporaries page-fault again. Winograd on a 56x56x64 layer ran at
  22 GFLOP/s with trimming and 60-70 without, depending only on what was
  allocated before. :func:`keep_freed_memory` stops both (``mallopt``), so
  every algorithm reuses its heap after the warm-up call.
- OpenBLAS worker threads spin for a long time after each call; on two
  cores they then compete with the next algorithm's own thread pool
  (Winograd's transforms ran at 1.7 GFLOP/s on 2 threads right after its
  BLAS GEMM). ``OPENBLAS_THREAD_TIMEOUT`` is read when OpenBLAS loads, so
  :data:`BLAS_ENV` is set in the environment of the sweep's worker
  process before numpy is imported there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

#: Environment for a fresh measuring process (read by OpenBLAS at load time).
BLAS_ENV = {"OPENBLAS_THREAD_TIMEOUT": "4"}

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # the largest value glibc accepts on 64-bit
_applied: dict[str, object] | None = None


def keep_freed_memory() -> dict[str, object]:
    """Stop glibc from trimming the heap and mmap-ing requests up to 32 MiB,
    and let the heap grow 64 MiB at a time.

    Idempotent; returns what was applied (recorded in env.json). A no-op
    where libc has no ``mallopt`` (not glibc).
    """
    global _applied
    if _applied is not None:
        return _applied
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        _applied = {"malloc_policy": "unchanged (no glibc mallopt)"}
        return _applied
    ok_trim = mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    ok_mmap = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
    ok_pad = mallopt(_M_TOP_PAD, 64 * 1024 * 1024) == 1  # grow the heap in big steps
    _applied = {
        "malloc_top_pad": "64MiB" if ok_pad else "unchanged",
        "malloc_trim_threshold": "2GiB (no trimming)" if ok_trim else "unchanged",
        "malloc_mmap_threshold": "32MiB" if ok_mmap else "unchanged",
    }
    return _applied


def blas_environment() -> dict[str, str]:
    """The BLAS settings this process started with, for env.json."""
    return {key: os.environ.get(key, "") for key in BLAS_ENV}
