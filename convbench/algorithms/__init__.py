"""The built-in algorithms, one module each.

Nothing registers on importing this package: the registry loads each module
in :data:`BUILTIN_MODULES` with :func:`convbench.load_plugin`, the same door
a ``--plugin`` module goes through, and each module registers its class
with :func:`convbench.register`.
"""

BUILTIN_MODULES = tuple(
    f"{__name__}.{module}"
    for module in (
        "naive", "im2col", "gemm_direct", "winograd", "winograd_tiled", "fft", "indirect",
        "im2col_numba",
        "torch_peer",  # registers only where torch imports
    )
)
