"""The built-in algorithms. Importing this package registers them, through
the same :func:`convbench.register` call a plugin uses."""

from . import naive, im2col, gemm_direct, winograd, fft, indirect  # noqa: F401
