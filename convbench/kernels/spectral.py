"""The FFT algorithm's products: per frequency, each group's channel sums, in numba.

``y[n, g, k, f] = sum_c x[n, g, c, f] * w[g, f, c, k]`` over complex spectra,
computed on the real and imaginary parts (``x`` and ``y`` are the float
views of complex arrays, ``w`` is split into two real arrays) so the loop
over output channels is a run of float FMAs that LLVM vectorises. A job is
one frequency of one group, for every image: its ``Cg x Kg`` block of the
weight spectrum, which sets the pace (it is as large as ``K*Cg`` times the
FFT plane), is read once a call. Jobs run over the threads in chunks of
consecutive frequencies (:mod:`._parallel`).

It replaced numpy's batched complex ``matmul`` over frequencies: with one
image that is a product of a ``1 x Cg`` row by a ``Cg x Kg`` matrix per
frequency, which numpy ran as a loop of tiny GEMMs (through BLAS where the
strides allowed it, each paying BLAS's thread wake-up at two threads:
issue 31 measured FFT 6x slower on two threads than on one).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._parallel import chunk_done, next_chunk, parallel_for


@njit(nogil=True, cache=True, fastmath=True)
def spectral_jobs(work, xf, wr, wi, yf):  # pragma: no cover - compiled
    """Jobs (``g * F + f``) from ``work`` of :func:`spectral_products`."""
    n_img, _, cg, f2 = xf.shape
    kg = wr.shape[3]
    nf = f2 // 2
    acc_r = np.empty(kg, wr.dtype)
    acc_i = np.empty(kg, wr.dtype)
    while True:
        lo, hi = next_chunk(work)
        if lo >= hi:
            return
        for job in range(lo, hi):
            g = job // nf
            f = job - g * nf
            for n in range(n_img):
                acc_r[:] = 0.0
                acc_i[:] = 0.0
                for c in range(cg):
                    a = xf[n, g, c, 2 * f]
                    b = xf[n, g, c, 2 * f + 1]
                    for k in range(kg):
                        acc_r[k] += a * wr[g, f, c, k] - b * wi[g, f, c, k]
                        acc_i[k] += a * wi[g, f, c, k] + b * wr[g, f, c, k]
                for k in range(kg):
                    yf[n, g, k, 2 * f] = acc_r[k]
                    yf[n, g, k, 2 * f + 1] = acc_i[k]
        chunk_done(work, lo, hi)


#: Frequencies a chunk holds at least: consecutive frequencies share the cache
#: lines of the strided reads of ``x`` and writes of ``y``.
MIN_FREQUENCIES = 16


def split_spectrum(w_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(G, F, Cg, Kg)`` complex -> its real and imaginary parts, each contiguous."""
    return np.ascontiguousarray(w_hat.real), np.ascontiguousarray(w_hat.imag)


def spectral_products(x_hat: np.ndarray, wr: np.ndarray, wi: np.ndarray, y_hat: np.ndarray) -> None:
    """``y_hat[n, g, k, f] = sum_c x_hat[n, g, c, f] * (wr + i wi)[g, f, c, k]``.

    ``x_hat`` ``(N, G, Cg, F)`` and ``y_hat`` ``(N, G, Kg, F)`` are C-contiguous
    complex arrays of the weights' float type (complex64 for float32);
    ``wr``, ``wi`` ``(G, F, Cg, Kg)``. The shapes are checked here (the kernel
    indexes by them, unchecked)."""
    real = wr.dtype
    cplx = np.result_type(real, np.complex64)
    n, g, cg, nf = x_hat.shape
    kg = wr.shape[3] if wr.ndim == 4 else -1
    if (wr.shape != (g, nf, cg, kg) or wi.shape != wr.shape or y_hat.shape != (n, g, kg, nf)
            or x_hat.dtype != cplx or y_hat.dtype != cplx or wi.dtype != real
            or not all(a.flags.c_contiguous for a in (x_hat, wr, wi, y_hat))):
        raise ValueError(f"spectral_products: x_hat {x_hat.dtype}{x_hat.shape}, wr {wr.dtype}{wr.shape}, "
                         f"wi {wi.dtype}{wi.shape}, y_hat {y_hat.dtype}{y_hat.shape} do not fit "
                         "together (or one is not C-contiguous)")
    xf = x_hat.view(real).reshape(n, g, cg, 2 * nf)
    yf = y_hat.view(real).reshape(n, g, kg, 2 * nf)
    flops = 8.0 * n * g * nf * cg * kg
    parallel_for(spectral_jobs, g * nf, xf, wr, wi, yf, min_chunk=MIN_FREQUENCIES, flops=flops,
                 nbytes=2.0 * wr.nbytes)
