"""Convolution through ``scipy.signal.correlate``: an example convbench plugin.

scipy knows neither stride nor dilation, so the kernel is dilated with zeros
once in ``prepare`` and the full-resolution output is strided afterwards.
``scipy.signal.correlate`` picks direct or FFT evaluation per call
(``method="auto"``), so the tolerance is the FFT one.
"""

from __future__ import annotations

import numpy as np

import convbench
from convbench.layouts import adapt


@convbench.register
class ScipyCorrelate(convbench.Algorithm):
    name = "scipy-correlate"
    description = "scipy.signal.correlate per (image, output channel) over the group's channels"
    natural_layout = "nchw"
    tolerance = {"float32": 5e-4, "float64": 1e-9}

    def workspace_bytes(self, spec: convbench.ConvSpec) -> int:
        padded = spec.batch * spec.in_channels * (spec.height + spec.pad_top + spec.pad_bottom) * (
            spec.width + spec.pad_left + spec.pad_right
        )
        return padded * spec.itemsize

    def prepare(self, spec: convbench.ConvSpec, weight: np.ndarray):
        # imported here, not at the top: every convbench command imports each
        # installed plugin to learn its name, and scipy.signal takes a second
        from scipy.signal import correlate

        rh, rw = spec.effective_kernel
        dilated = np.zeros((spec.out_channels, spec.channels_per_group, rh, rw), spec.dtype)
        dilated[:, :, :: spec.dilation_h, :: spec.dilation_w] = weight
        cg, kg = spec.channels_per_group, spec.out_channels_per_group
        sh, sw = spec.stride
        top, bottom, left, right = spec.padding
        oh, ow = spec.output_height, spec.output_width

        def call(x: np.ndarray) -> np.ndarray:
            xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
            y = np.empty((spec.batch, spec.out_channels, oh, ow), spec.dtype)
            for n in range(spec.batch):
                for k in range(spec.out_channels):
                    g = k // kg
                    full = correlate(xp[n, g * cg : (g + 1) * cg], dilated[k], mode="valid")[0]
                    y[n, k] = full[: (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]
            return y

        return adapt(call, spec.layout, "nchw")
