"""FFT convolution: the convolution theorem with real FFTs (scipy.fft).

``prepare`` zero-pads the dilated kernel to the FFT size and transforms it
once. A call pads the input, transforms it, multiplies and sums over each
group's input channels per frequency (a numba kernel,
:mod:`convbench.kernels.spectral`), transforms back, then crops and strides.
Cross-correlation is a product with the conjugate kernel spectrum. The
FFT size is the padded input rounded up to a fast length: a circular
correlation of that size wraps only into outputs that are cropped away.

Phases: ``pack`` (the zero-padded copy) -> ``transform_in`` (forward FFTs) ->
``gemm`` (products and channel sums per frequency) -> ``transform_out``
(inverse FFTs, crop, stride); NHWC adds its layout conversions.

Threads (issue 31): the ``gemm`` step was numpy's batched complex matmul,
``(1 x Cg) @ (Cg x Kg)`` once per frequency, which ran as thousands of tiny
products, each paying BLAS's thread wake-up at two threads (0.16x on a 3x3
64->64 56x56 layer against one thread). It is now a numba kernel over
(group, frequency) jobs on the case's threads
(:mod:`convbench.kernels.spectral`), memory-bound on the weight spectrum
(read once a call, ``K*Cg`` FFT planes): where a second core adds no memory
bandwidth (the 2-vCPU Zen 4 VM: 33.7 GB/s read on one thread, 30.3 on two)
FFT stays near 1x at two threads; ``docs/threads.md`` says what would change
that (a tiled FFT).
The transforms use scipy.fft's ``workers``, one per grain of data
(:mod:`convbench.kernels.grain`), with the kernels' helpers parked so
pocketfft's threads have the cores. The zero-padded copy and the crop are
numpy copies on one thread (a few percent of the call).
"""

from __future__ import annotations

import numpy as np

from ..layouts import adapt
from ..phases import phased
from ..registry import register
from ..spec import ConvSpec
from ..kernels._parallel import park
from ..kernels.grain import threads_for
from ..kernels.spectral import spectral_products, split_spectrum
from ..machine.threads import fft_workers
from ..algorithm import Algorithm, Array, ConvCall


def _fft_shape(spec: ConvSpec) -> tuple[int, int]:
    import scipy.fft  # here, not at the top: it costs a third of a second to import

    hp = spec.height + spec.pad_top + spec.pad_bottom
    wp = spec.width + spec.pad_left + spec.pad_right
    return scipy.fft.next_fast_len(hp, real=True), scipy.fft.next_fast_len(wp, real=True)


def _workers(nbytes: int) -> int:
    """scipy.fft's ``workers`` for a transform of ``nbytes``: one per grain of it,
    at most the case's FFT workers; the pool's helpers sleep meanwhile (its
    threads and pocketfft's share the case's cores)."""
    workers = threads_for(nbytes=nbytes, most=fft_workers())
    if workers > 1:
        park()
    return workers


@register
class FFT(Algorithm):
    name = "fft"
    description = "convolution theorem with real FFTs (scipy.fft), channel sums per frequency"
    natural_layout = "nchw"
    # rounding in the transforms grows with log(size), not with C*R*S
    tolerance = {"float32": 5e-4, "float64": 1e-9}

    def implementation(self, spec: ConvSpec) -> str:
        return "scipy.fft+numba"  # pocketfft transforms, numba channel sums per frequency

    def workspace_bytes(self, spec: ConvSpec) -> int:
        hf, wf = _fft_shape(spec)
        freqs = hf * (wf // 2 + 1)
        complex_size = 2 * spec.itemsize
        x_hat = spec.batch * spec.in_channels * freqs * complex_size
        y_hat = spec.batch * spec.out_channels * freqs * complex_size
        w_hat = spec.out_channels * spec.channels_per_group * freqs * complex_size
        y_full = spec.batch * spec.out_channels * hf * wf * spec.itemsize
        return x_hat + y_hat + w_hat + y_full

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        import scipy.fft

        g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
        n, k = spec.batch, spec.out_channels
        hf, wf = _fft_shape(spec)
        rh, rw = spec.effective_kernel
        dh, dw = spec.dilation
        sh, sw = spec.stride
        oh, ow = spec.output_height, spec.output_width
        top, bottom, left, right = spec.padding
        dtype = spec.np_dtype

        dilated = np.zeros((k, cg, rh, rw), dtype)
        dilated[:, :, ::dh, ::dw] = weight
        w_hat = np.conj(scipy.fft.rfft2(dilated, s=(hf, wf)))  # (K, Cg, Hf, Wf2)
        wf2 = w_hat.shape[3]
        freqs = w_hat.shape[2] * wf2
        # per group and frequency: a (Cg, Kg) matrix, as real and imaginary parts
        wr, wi = split_spectrum(w_hat.reshape(g, kg, cg, freqs).transpose(0, 3, 2, 1))
        cplx = np.result_type(dtype, np.complex64)
        x_bytes = n * spec.in_channels * hf * wf * spec.itemsize
        y_bytes = n * k * hf * wf * spec.itemsize

        def pack(x: Array) -> Array:
            return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))

        def transform_in(xp: Array) -> Array:
            workers = _workers(x_bytes)
            x_hat = scipy.fft.rfft2(xp, s=(hf, wf), workers=workers)  # (N, C, Hf, Wf2)
            return np.ascontiguousarray(x_hat, cplx).reshape(n, g, cg, freqs)

        def gemm(x_hat: Array) -> Array:
            y_hat = np.empty((n, g, kg, freqs), cplx)
            spectral_products(x_hat, wr, wi, y_hat)
            return y_hat.reshape(n, k, hf, wf2)

        def transform_out(y_hat: Array) -> Array:
            y_full = scipy.fft.irfft2(y_hat, s=(hf, wf), workers=_workers(y_bytes))
            y = y_full[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]
            return np.ascontiguousarray(y, dtype=dtype)

        call = phased(("pack", pack), ("transform_in", transform_in), ("gemm", gemm),
                      ("transform_out", transform_out))
        return adapt(call, spec.layout, "nchw")
