"""FFT convolution: the convolution theorem with real FFTs (scipy.fft).

``prepare`` zero-pads the dilated kernel to the FFT size and transforms it
once. A call pads the input, transforms it, multiplies and sums over each
group's input channels per frequency (one batched matmul; an elementwise
product for depthwise layers), transforms back, then crops and strides.
Cross-correlation is a product with the conjugate kernel spectrum. The
FFT size is the padded input rounded up to a fast length: a circular
correlation of that size wraps only into outputs that are cropped away.

Phases: ``pack`` (the zero-padded copy) -> ``transform_in`` (forward FFTs) ->
``gemm`` (products and channel sums per frequency) -> ``transform_out``
(inverse FFTs, crop, stride); NHWC adds its layout conversions.
"""

from __future__ import annotations

import numpy as np

from ..layouts import adapt
from .. import implementation as impl
from ..phases import phased
from ..registry import register
from ..spec import ConvSpec
from ..machine.threads import fft_workers
from ..algorithm import Algorithm, Array, ConvCall


def _fft_shape(spec: ConvSpec) -> tuple[int, int]:
    import scipy.fft  # here, not at the top: it costs a third of a second to import

    hp = spec.height + spec.pad_top + spec.pad_bottom
    wp = spec.width + spec.pad_left + spec.pad_right
    return scipy.fft.next_fast_len(hp, real=True), scipy.fft.next_fast_len(wp, real=True)


@register
class FFT(Algorithm):
    name = "fft"
    description = "convolution theorem with real FFTs (scipy.fft), channel sums per frequency"
    natural_layout = "nchw"
    # rounding in the transforms grows with log(size), not with C*R*S
    tolerance = {"float32": 5e-4, "float64": 1e-9}

    def implementation(self, spec: ConvSpec) -> str:
        return f"scipy.fft+{impl.blas()}"  # pocketfft transforms, BLAS channel sums

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
        freqs = w_hat.shape[2] * w_hat.shape[3]
        # per frequency and group: a (Cg, Kg) matrix
        w_mat = np.ascontiguousarray(
            w_hat.reshape(g, kg, cg, freqs).transpose(3, 0, 2, 1)
        )  # (F, G, Cg, Kg)
        depthwise = cg == 1

        def pack(x: Array) -> Array:
            return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))

        def transform_in(xp: Array) -> Array:
            x_hat = scipy.fft.rfft2(xp, s=(hf, wf), workers=fft_workers())  # (N, C, Hf, Wf2)
            return x_hat.reshape(n, g, cg, freqs)

        def gemm(x_hat: Array) -> Array:
            if depthwise:
                # (N, G, 1, F) * (G, Kg, F) -> (N, G, Kg, F)
                y_hat = x_hat * w_mat[:, :, 0, :].transpose(1, 2, 0)
            else:
                # (F, G, N, Cg) @ (F, G, Cg, Kg) -> (F, G, N, Kg)
                prod = np.matmul(x_hat.transpose(3, 1, 0, 2), w_mat)
                y_hat = prod.transpose(2, 1, 3, 0)
            return y_hat.reshape(n, k, hf, wf // 2 + 1)

        def transform_out(y_hat: Array) -> Array:
            y_full = scipy.fft.irfft2(y_hat, s=(hf, wf), workers=fft_workers())
            y = y_full[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]
            return np.ascontiguousarray(y, dtype=dtype)

        call = phased(("pack", pack), ("transform_in", transform_in), ("gemm", gemm),
                      ("transform_out", transform_out))
        return adapt(call, spec.layout, "nchw")
