"""numba micro-kernels: the hot loops of every algorithm live here and nowhere else."""

import os

from ._cache_guard import guard

# before any kernel module is decorated: a cached kernel is stale when any file here changes
guard(os.path.dirname(os.path.abspath(__file__)))
