"""The torch peers: PyTorch's CPU convolution, float and 8-bit, one name per library.

Float (float32, float64):

- ``torch``: ``F.conv2d`` as PyTorch dispatches it. PyTorch picks a backend
  per call (at one thread, 1x1 layers go to ``Slow2d``, im2col + MKL GEMM;
  larger 3x3 ones to oneDNN), so :meth:`TorchConv2d.implementation` asks
  PyTorch which one (``torch._C._select_conv_backend``) and each row records
  it, e.g. ``torch:Slow2d`` or ``torch:Mkldnn``.
- ``onednn``: oneDNN on every layer. ``prepare`` reorders the weights once
  into oneDNN's blocked format (what ``torch.compile``'s CPU backend does
  with frozen weights); the call is ``torch.ops.mkldnn._convolution_pointwise``
  (``onednn:prepacked``). A torch without those private ops gets
  ``torch.ops.aten.mkldnn_convolution``, which reorders per call (``onednn``).
  So does a layer of one input channel per group, one output column and a
  column stride above 1 (:func:`~convbench.algorithms.torch_quantized.onednn_one_column_wrong`):
  there the prepacked op answered wrongly (relative errors 0.1-1.7 on
  2x1x3x5 2x4/s(1,2) and the like, torch 2.13), the per-call op exactly.
  oneDNN has no float64 convolution: float64 specs are skipped.

Both register only where torch is installed and import it at the first
``prepare``. NHWC specs run channels_last (a permuted view, no copy), NCHW
specs contiguous, so torch gets the layout it is fastest in for each.
PyTorch pads only symmetrically: asymmetric padding is an explicit ``F.pad``
inside the timed call. torch's intra-op pool follows the case's thread count
(:func:`convbench.machine.threads.add_pool`) and is restored after it.

8-bit (``u8s8``, :mod:`convbench.algorithms.torch_quantized`): PyTorch's
quantized convolution with prepacked per-channel qint8 weights and quint8
activations, under a quantized engine:

- ``torch``: the default engine (``x86`` on x86 builds, which hands each
  layer to oneDNN or fbgemm: the row's implementation says which, e.g.
  ``torch:x86-onednn``);
- ``onednn``: the ``onednn`` engine (``onednn:quantized``);
- ``fbgemm``: the ``fbgemm`` engine (8-bit only; ``fbgemm:quantized``);
- ``qnnpack``: the ``qnnpack`` engine (8-bit only): QNNPACK, the Indirect
  Convolution paper's own implementation, whose ``conv`` micro-kernel reads
  its input through an indirection buffer (``qnnpack:conv-indirect-sse2``;
  its x86 kernels are SSE2).

Phases: one ``other`` step (a plain callable: the library's call is opaque).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np

from ..spec import ConvSpec
from ..algorithm import Array, ConvCall
from . import torch_quantized as tq
from .peer import Peer, register_if_installed


def _torch() -> Any:
    """torch, imported now, with its thread pool under the case's limits."""
    import torch

    from ..machine.threads import add_pool

    add_pool("torch", torch.get_num_threads, torch.set_num_threads)
    return torch


def _padding(spec: ConvSpec) -> tuple[tuple[int, int], tuple[int, int, int, int] | None]:
    """(padding torch's conv is given, explicit F.pad (left, right, top, bottom) or None)."""
    top, bottom, left, right = spec.padding
    if top == bottom and left == right:
        return (top, left), None
    return (0, 0), (left, right, top, bottom)


def _as_torch_input(torch: Any, x: Array, nhwc: bool, pad: tuple[int, int, int, int] | None) -> Any:
    t = torch.from_numpy(x)
    if nhwc:
        t = t.permute(0, 3, 1, 2)  # a channels_last NCHW view, no copy
        if t.shape[1] == 1:
            # With C == 1 the view is both NCHW- and channels_last-contiguous (C's
            # stride is 1) and torch 2.13's conv2d then read garbage (1x5 kernel,
            # stride (1, 2), found by the fuzz test); the same memory with NCHW's
            # strides is unambiguous. A view, no copy.
            n, c, h, w = t.shape
            t = t.as_strided(t.shape, (h * w, h * w, w, 1))
    if pad is not None:
        t = torch.nn.functional.pad(t, pad)  # keeps channels_last
    return t


def _to_numpy(y: Any, nhwc: bool) -> Array:
    if nhwc:
        y = y.permute(0, 2, 3, 1)
    return np.ascontiguousarray(y.numpy())


def _weight(torch: Any, weight: Array, spec: ConvSpec) -> Any:
    w = torch.from_numpy(np.ascontiguousarray(weight, spec.dtype))
    return w.contiguous(memory_format=torch.channels_last) if spec.layout == "nhwc" else w


@register_if_installed
class TorchConv2d(Peer):
    name = "torch"
    description = ("PyTorch F.conv2d as it dispatches (backend per row: Slow2d, Mkldnn, ...); channels_last for "
                   "NHWC; u8s8: quantized conv under the default engine (x86: oneDNN or fbgemm per layer)")
    library = "torch"
    packages = ("torch",)
    dtypes = ("float32", "float64", "u8s8")
    #: the quantized engine of a u8s8 spec (:data:`convbench.algorithms.torch_quantized.ENGINES`)
    engine: ClassVar[str] = "default"

    def supports(self, spec: ConvSpec) -> str | None:
        return tq.unsupported(_torch(), spec, self.engine) if spec.is_quantized else None

    def implementation(self, spec: ConvSpec) -> str:
        torch = _torch()
        if spec.is_quantized:
            return f"torch:{tq.what_runs(torch, spec, self.engine)}"  # e.g. torch:x86-onednn
        padding, pad = _padding(spec)
        h = spec.height + (pad[2] + pad[3] if pad else 0)
        w = spec.width + (pad[0] + pad[1] if pad else 0)
        fmt = torch.channels_last if spec.layout == "nhwc" else torch.contiguous_format
        dtype = getattr(torch, spec.dtype)
        x = torch.empty((spec.batch, spec.in_channels, h, w), dtype=dtype).contiguous(memory_format=fmt)
        wt = torch.empty(spec.weight_shape, dtype=dtype).contiguous(memory_format=fmt)
        try:
            backend = torch._C._select_conv_backend(
                x, wt, None, list(spec.stride), list(padding), list(spec.dilation), False, [0, 0],
                spec.groups, None)
        except (AttributeError, TypeError, RuntimeError):  # a private API; another torch may differ
            return "torch:F.conv2d"
        return f"torch:{getattr(backend, 'name', backend)}"

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        torch = _torch()
        if spec.is_quantized:
            return tq.prepare(torch, spec, weight, self.engine)  # type: ignore[arg-type]
        F = torch.nn.functional
        padding, pad = _padding(spec)
        nhwc = spec.layout == "nhwc"
        w = _weight(torch, weight, spec)
        args = dict(stride=spec.stride, padding=padding, dilation=spec.dilation, groups=spec.groups)

        def call(x: Array) -> Array:
            with torch.inference_mode():
                return _to_numpy(F.conv2d(_as_torch_input(torch, x, nhwc, pad), w, **args), nhwc)

        return call


@register_if_installed
class OneDNN(Peer):
    name = "onednn"
    description = ("oneDNN forced through PyTorch (weights reordered once in prepare); float32; u8s8: PyTorch's "
                   "quantized conv under the onednn engine")
    constraints = "float32 and u8s8 only"
    library = "torch"
    packages = ("torch",)
    dtypes = ("float32", "u8s8")

    def supports(self, spec: ConvSpec) -> str | None:
        if spec.is_quantized:
            return tq.unsupported(_torch(), spec, "onednn")
        if spec.dtype != "float32":
            return f"oneDNN (in PyTorch) has no {spec.dtype} convolution"
        return None

    def implementation(self, spec: ConvSpec) -> str:
        if spec.is_quantized:
            return "onednn:quantized"
        return "onednn:prepacked" if _prepacking(_torch()) and not tq.onednn_one_column_wrong(spec) else "onednn"

    def library_version(self) -> str | None:
        base = super().library_version()
        torch = _torch()
        m = re.search(r"(?:oneDNN|MKL-DNN) v([\w.]+)", torch.__config__.show())
        return f"{base} (oneDNN {m.group(1)})" if m else base

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        torch = _torch()
        if spec.is_quantized:
            return tq.prepare(torch, spec, weight, "onednn")  # type: ignore[arg-type]
        padding, pad = _padding(spec)
        nhwc = spec.layout == "nhwc"
        h = spec.height + (pad[2] + pad[3] if pad else 0)
        w = spec.width + (pad[0] + pad[1] if pad else 0)
        geometry = (list(padding), list(spec.stride), list(spec.dilation), spec.groups)
        if not _prepacking(torch) or tq.onednn_one_column_wrong(spec):
            # a torch without the packed-weight ops, or a layer they get wrong: oneDNN still,
            # reordering the weights per call
            w_dense = _weight(torch, weight, spec)
            conv = torch.ops.aten.mkldnn_convolution

            def plain(x: Array) -> Array:
                with torch.inference_mode():
                    t = _as_torch_input(torch, x, nhwc, pad)
                    return _to_numpy(conv(t, w_dense, None, *geometry), nhwc)

            return plain
        with torch.inference_mode():
            w_dense = torch.from_numpy(np.ascontiguousarray(weight, spec.dtype))
            packed = torch._C._nn.mkldnn_reorder_conv2d_weight(
                w_dense.to_mkldnn(), *geometry, [spec.batch, spec.in_channels, h, w])
        conv = torch.ops.mkldnn._convolution_pointwise

        def call(x: Array) -> Array:
            with torch.inference_mode():
                t = _as_torch_input(torch, x, nhwc, pad)
                return _to_numpy(conv(t, packed, None, *geometry, "none", [], ""), nhwc)

        return call


def _prepacking(torch: Any) -> bool:
    """Whether this torch has the ops of oneDNN's packed weights (private; torch 2.x has them)."""
    try:
        return callable(torch._C._nn.mkldnn_reorder_conv2d_weight) and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):
        return False


class _QuantizedEngine(Peer):
    """A torch peer that runs only ``u8s8``, under one quantized engine."""

    library = "torch"
    packages = ("torch",)
    dtypes = ("u8s8",)
    constraints = "u8s8 only"
    engine: ClassVar[str] = ""

    def supports(self, spec: ConvSpec) -> str | None:
        if not spec.is_quantized:  # when asked directly: unsupported_reason says so from dtypes first
            return f"{self.name} runs u8s8 only"
        return tq.unsupported(_torch(), spec, self.engine)

    def implementation(self, spec: ConvSpec) -> str:
        what = tq.what_runs(_torch(), spec, self.engine)  # qnnpack-conv-indirect-sse2, fbgemm
        return f"{self.name}:{what.removeprefix(self.engine + '-') if what != self.engine else 'quantized'}"

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        return tq.prepare(_torch(), spec, weight, self.engine)  # type: ignore[arg-type]


@register_if_installed
class Fbgemm(_QuantizedEngine):
    name = "fbgemm"
    description = "fbgemm through PyTorch's quantized conv (the fbgemm engine); u8s8 only"
    engine = "fbgemm"


@register_if_installed
class Qnnpack(_QuantizedEngine):
    name = "qnnpack"
    description = ("QNNPACK through PyTorch's quantized conv (the qnnpack engine): the Indirect Convolution "
                   "paper's own implementation (SSE2 kernels on x86); u8s8 only")
    engine = "qnnpack"
