"""FFT convolution: the convolution theorem with real FFTs (scipy.fft).

``prepare`` zero-pads the dilated kernel to the FFT size and transforms it
once. A call transforms the input, multiplies and sums over each
group's input channels per frequency (a numba kernel,
:mod:`convbench.kernels.spectral`), transforms back, then crops and strides.
Cross-correlation is a product with the conjugate kernel spectrum. The
FFT size is the padded input rounded up to a fast length: a circular
correlation of that size wraps only into outputs that are cropped away.

Phases: ``transform_in`` (forward FFTs) -> ``gemm`` (products and channel
sums per frequency) -> ``transform_out`` (inverse FFTs, crop, stride); NHWC
adds its layout conversions.

Threads (issue 31): the ``gemm`` step was numpy's batched complex matmul,
``(1 x Cg) @ (Cg x Kg)`` once per frequency, which ran as thousands of tiny
products, each paying BLAS's thread wake-up at two threads (0.16x on a 3x3
64->64 56x56 layer against one thread). It is now a numba kernel over
(group, frequency) jobs on the case's threads
(:mod:`convbench.kernels.spectral`), memory-bound on the weight spectrum
(read once a call, ``K*Cg`` FFT planes): where a second core adds no memory
bandwidth (the 2-vCPU Zen 4 VM: 33.7 GB/s read on one thread, 30.3 on two)
it scaled 1.8x on a 3x3 64->64 56x56 layer but 1.37x on a 256->256 14x14
one; ``docs/threads.md`` says what would change that (a tiled FFT).
The transforms run on the kernels' pool too, in channel blocks, one block
a thread, each a one-worker pocketfft call
(:func:`~convbench.kernels._parallel.parallel_numpy_blocks`).
pocketfft's own ``workers`` did not scale them on that VM: a 64-channel
60x60 forward transform took 515 us on one worker and 405-558 us on two, a
256-channel 16x16 one 140 us and 250 us, where
two channel blocks on the pool took 360 us and 125 us. On the Zen 1 VM
neither way scales transforms of small planes (16x16: two threads in
one-worker calls no faster than the two calls in turn), and the products
scale no better than that VM's memory read, 1.4-1.7x (docs/threads.md).
There is no zero-padded copy: the FFT pads the bottom and right with zeros,
and the top and left padding is a shift of the circular correlation, taken
back in the crop (rows ``(o*stride - top) mod Hf``: :func:`_wrapped_crop`).
"""

from __future__ import annotations

import math

import numpy as np

from ..layouts import adapt
from ..phases import phased
from ..registry import register
from ..spec import ConvSpec
from ..kernels._parallel import parallel_numpy_blocks
from ..kernels.spectral import spectral_products, split_spectrum
from ..algorithm import Algorithm, Array, ConvCall


def _fft_shape(spec: ConvSpec) -> tuple[int, int]:
    import scipy.fft  # here, not at the top: it costs a third of a second to import

    hp = spec.height + spec.pad_top + spec.pad_bottom
    wp = spec.width + spec.pad_left + spec.pad_right
    return scipy.fft.next_fast_len(hp, real=True), scipy.fft.next_fast_len(wp, real=True)


def _wrapped_crop(out: int, stride: int, pad: int, size: int) -> list[tuple[slice, slice]]:
    """The output positions ``o`` of one axis as (output, FFT) slice pairs, reading FFT
    position ``(o*stride - pad) mod size``: the correlation of the unpadded input is
    the padded one shifted by ``pad``; the positions before 0 wrap to the end, which
    holds zeros of the FFT's own padding (``size >= extent + pad``)."""
    wrapped = min(out, -(-pad // stride))  # outputs whose first tap is in the padding
    first = wrapped * stride - pad
    pairs = []
    if wrapped < out:
        pairs.append((slice(wrapped, out), slice(first, first + (out - wrapped - 1) * stride + 1, stride)))
    if wrapped:
        start = size - pad
        pairs.append((slice(0, wrapped), slice(start, start + (wrapped - 1) * stride + 1, stride)))
    return pairs


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
        top, _, left, _ = spec.padding
        dtype = spec.np_dtype

        dilated = np.zeros((k, cg, rh, rw), dtype)
        dilated[:, :, ::dh, ::dw] = weight
        w_hat = np.conj(scipy.fft.rfft2(dilated, s=(hf, wf)))  # (K, Cg, Hf, Wf2)
        wf2 = w_hat.shape[3]
        freqs = w_hat.shape[2] * wf2
        # per group and frequency: a (Cg, Kg) matrix, as real and imaginary parts
        wr, wi = split_spectrum(w_hat.reshape(g, kg, cg, freqs).transpose(0, 3, 2, 1))
        cplx = np.result_type(dtype, np.complex64)
        # each transform streams its planes once per radix pass (about log4 of the plane)
        passes = max(1.0, math.log2(hf * wf) / 2)
        x_work = passes * n * spec.in_channels * hf * wf * spec.itemsize
        y_work = passes * n * k * hf * wf * spec.itemsize
        crop_rows, crop_cols = _wrapped_crop(oh, sh, top, hf), _wrapped_crop(ow, sw, left, wf)

        def transform_in(x: Array) -> Array:
            x_hat = np.empty((n, spec.in_channels, hf, wf2), cplx)

            def block(lo: int, hi: int) -> None:
                x_hat[:, lo:hi] = scipy.fft.rfft2(x[:, lo:hi], s=(hf, wf), workers=1)

            parallel_numpy_blocks(block, spec.in_channels, nbytes=x_work)
            return x_hat.reshape(n, g, cg, freqs)

        def gemm(x_hat: Array) -> Array:
            y_hat = np.empty((n, g, kg, freqs), cplx)
            spectral_products(x_hat, wr, wi, y_hat)
            return y_hat.reshape(n, k, hf, wf2)

        def transform_out(y_hat: Array) -> Array:
            y = np.empty((n, k, oh, ow), dtype)

            def block(lo: int, hi: int) -> None:
                full = scipy.fft.irfft2(y_hat[:, lo:hi], s=(hf, wf), workers=1)
                for dst_r, src_r in crop_rows:
                    for dst_c, src_c in crop_cols:
                        y[:, lo:hi, dst_r, dst_c] = full[:, :, src_r, src_c]

            parallel_numpy_blocks(block, k, nbytes=y_work)
            return y

        call = phased(("transform_in", transform_in), ("gemm", gemm), ("transform_out", transform_out))
        return adapt(call, spec.layout, "nchw")
