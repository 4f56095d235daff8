"""numba micro-kernels: the hot loops of every algorithm live here and nowhere else."""
