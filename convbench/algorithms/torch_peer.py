"""``torch``: PyTorch's CPU conv2d (oneDNN), the peer every figure can show beside ours.

Registered only when torch is installed; torch is never required, and it
is imported at the first ``prepare`` (importing it costs seconds, which
every other algorithm's first result would otherwise pay). NHWC
specs run channels_last (a permuted view, no copy), NCHW specs contiguous,
so torch gets the layout it is fastest in for each. torch pads only
symmetrically: asymmetric padding is an explicit ``F.pad`` inside the
timed call. Its thread pool follows the case (``convbench.machine.threads``).
"""

from __future__ import annotations

import numpy as np

from ..registry import register
from ..spec import ConvSpec
from ..algorithm import Algorithm, Array, ConvCall

import importlib.util


class TorchConv2d(Algorithm):
    name = "torch"
    description = "PyTorch conv2d on the CPU (oneDNN); channels_last for NHWC specs"
    natural_layout = None

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        import torch
        import torch.nn.functional as F

        from ..machine.threads import sync_torch_threads

        sync_torch_threads()
        top, bottom, left, right = spec.padding
        symmetric = top == bottom and left == right
        padding = (top, left) if symmetric else (0, 0)
        nhwc = spec.layout == "nhwc"
        w = torch.from_numpy(np.ascontiguousarray(weight, spec.dtype))
        if nhwc:
            w = w.contiguous(memory_format=torch.channels_last)
        args = dict(stride=spec.stride, padding=padding, dilation=spec.dilation, groups=spec.groups)

        def call(x: Array) -> Array:
            with torch.inference_mode():
                t = torch.from_numpy(x)
                if nhwc:
                    t = t.permute(0, 3, 1, 2)  # a channels_last NCHW view
                if not symmetric:
                    t = F.pad(t, (left, right, top, bottom))
                y = F.conv2d(t, w, **args)
                if nhwc:
                    y = y.permute(0, 2, 3, 1)
                return np.ascontiguousarray(y.numpy())

        return call


if importlib.util.find_spec("torch") is not None:
    register(TorchConv2d)
