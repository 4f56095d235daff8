"""What a process does once before it times any convolution: the one place for it, so a
sweep's process, its workers and ``benchmarks/kernels.py`` measure in the same state."""

from __future__ import annotations

from .blas import warm_blas
from .malloc_policy import keep_freed_memory


def prepare_measuring_process() -> None:
    """Keep freed memory in the process (:func:`~convbench.machine.malloc_policy.keep_freed_memory`:
    no call pays to fault its buffers in again) and warm BLAS
    (:func:`~convbench.machine.blas.warm_blas`: no baseline runs in BLAS's slow cold state)."""
    keep_freed_memory()
    warm_blas()
