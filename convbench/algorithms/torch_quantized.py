"""PyTorch's quantized convolution on a ``u8s8`` layer, under one quantized engine.

The torch peers of :mod:`convbench.algorithms.torch_peer` run a ``u8s8``
spec through these helpers, each under its engine
(``torch.backends.quantized.engine``): ``torch`` under the default one
(``x86`` on x86 builds), ``onednn``, ``fbgemm`` and ``qnnpack`` under theirs.
Nothing here registers an algorithm.

- ``prepare``: the s8 OIHW weight becomes a per-channel ``qint8`` tensor
  (``w_scale``, zero points 0); the int32 bias is handed over as the float
  ``bias * x_scale * w_scale[k]``, which torch divides by the same product
  and rounds back to int32 (the battery checks the answer stays within 1
  LSB); both are prepacked once (``quantized::conv2d_prepack``) with the
  engine set, and the engine is put back. The packed weight belongs to the
  engine that packed it: ``quantized::conv2d`` runs that engine's kernels
  whatever the global engine is at call time.
- the call: the uint8 input becomes a ``quint8`` tensor (``x_scale``,
  ``x_zero``), an NHWC input a channels_last view of it; asymmetric padding
  (torch pads symmetrically only) is an explicit pad with ``x_zero`` inside
  the call; then ``quantized::conv2d(qx, packed, y_scale, y_zero)`` and its
  uint8 values in the spec's layout. The engines write channels_last, so an
  NCHW spec pays a transpose of the output inside its time.

What each engine cannot do was measured, not assumed (torch 2.13, the
conformance battery on full-range u8 data): ``fbgemm``'s depthwise fast path
(3x3 or 5x5 kernels with "same" padding, stride 1 or 2, no dilation,
channels a multiple of 8, channel multiplier 1 or 2; ``takeDepthWiseFastPath``
in fbgemm) sums u8 x s8 pairs in saturating int16 and was off by up to 97
LSB, so those layers are refused for ``fbgemm`` and for ``x86`` wherever it
hands a layer to fbgemm (PyTorch's own fbgemm qconfig keeps activations to
7 bits, ``reduce_range``, for this reason; with 7-bit inputs the same layers
are exact). On a CPU without VNNI, fbgemm and oneDNN sum every layer's
pairs that way (``vpmaddubsw``; found by the conformance battery on a Zen 1
VM), so there both are refused for every layer
(:func:`~convbench.algorithms.vnni.saturates_without_vnni`, which
``onnxruntime`` shares). ``x86`` picks oneDNN on Linux with AVX-512 VNNI
for groups <= 100 and fbgemm otherwise (``should_use_onednn_quant``); the
row's implementation says which.

PyTorch marks its quantized tensor constructors deprecated (a warning, once
per process): the peers keep working until a release removes them.
"""

from __future__ import annotations

import platform
import sys
import warnings
from typing import Any

import numpy as np

from ..algorithm import Array, ConvCall
from ..quant import QuantizedWeight
from ..spec import ConvSpec
from .vnni import host_features, saturates_without_vnni

#: The engine each peer runs ("default": the engine torch starts with).
ENGINES = ("default", "x86", "fbgemm", "onednn", "qnnpack")
#: x86 hands groups above this to fbgemm even with VNNI (PyTorch's should_use_onednn_quant).
X86_ONEDNN_MAX_GROUPS = 100

_default: list[str] = []  # the engine torch started with, read once before any peer changes it


def default_engine(torch: Any) -> str:
    """The quantized engine this torch starts with (``x86`` on x86 builds, ``qnnpack`` on ARM)."""
    if not _default:
        _default.append(str(torch.backends.quantized.engine))
    return _default[0]


def resolve(torch: Any, engine: str) -> str:
    return default_engine(torch) if engine == "default" else engine


def _host_has_avx512_vnni() -> bool:
    """What cpuinfo_has_x86_avx512vnni() says in PyTorch."""
    return "avx512vnni" in host_features()


def x86_backend(spec: ConvSpec) -> str:
    """The library PyTorch's ``x86`` engine packs ``spec`` for: ``onednn`` or ``fbgemm``."""
    onednn = sys.platform.startswith("linux") and _host_has_avx512_vnni() and spec.groups <= X86_ONEDNN_MAX_GROUPS
    return "onednn" if onednn else "fbgemm"


def fbgemm_depthwise_fast_path(spec: ConvSpec) -> bool:
    """Whether fbgemm takes its depthwise fast path (fbgemm's ``takeDepthWiseFastPath``).

    Padding is as torch hands it over: symmetric, or 0 after an explicit pad.
    """
    g = spec.groups
    kh, kw = spec.kernel
    symmetric = spec.pad_top == spec.pad_bottom and spec.pad_left == spec.pad_right
    pad = (spec.pad_top, spec.pad_left) if symmetric else (0, 0)
    return (g == spec.in_channels and spec.out_channels in (g, 2 * g) and g % 8 == 0
            and all(s in (1, 2) for s in spec.stride) and kh == kw and kh in (3, 5)
            and spec.dilation == (1, 1) and pad == ((kh - 1) // 2, (kw - 1) // 2))


def onednn_one_column_wrong(spec: ConvSpec) -> bool:
    """A layer oneDNN (in torch 2.13) was measured to answer wrongly: one input channel per
    group, one output column, a column stride above 1 (float: the prepacked op, relative
    errors up to 1.7; u8s8: up to 126 LSB with batch > 1; found by the conformance fuzz)."""
    return spec.channels_per_group == 1 and spec.output_width == 1 and spec.stride_w > 1


def packing_library(torch: Any, spec: ConvSpec, engine: str) -> str:
    """The library whose kernels run ``spec`` under ``engine`` (``x86`` resolved)."""
    engine = resolve(torch, engine)
    return x86_backend(spec) if engine == "x86" else engine


def unsupported(torch: Any, spec: ConvSpec, engine: str) -> str | None:
    """Why ``engine`` cannot give a right answer for ``spec`` (a reason), or None."""
    name = resolve(torch, engine)
    engines = list(torch.backends.quantized.supported_engines)
    if name not in engines:
        return f"this torch build has no {name!r} quantized engine (it has {', '.join(e for e in engines if e != 'none')})"
    library = packing_library(torch, spec, engine)
    saturates = saturates_without_vnni()
    if library in ("fbgemm", "onednn") and saturates:
        return f"{library}: {saturates}"
    if library == "fbgemm" and fbgemm_depthwise_fast_path(spec):
        via = "" if name == "fbgemm" else f" (the {name} engine hands groups > {X86_ONEDNN_MAX_GROUPS} or a CPU without AVX-512 VNNI to fbgemm)"
        return (f"fbgemm's depthwise fast path sums u8 x s8 pairs in saturating int16: wrong by up to ~100 LSB "
                f"on full-range u8 activations (PyTorch's fbgemm qconfig uses 7-bit ones){via}")
    if library == "onednn" and onednn_one_column_wrong(spec):
        via = "" if name == "onednn" else f" (the {name} engine hands this layer to oneDNN)"
        return ("oneDNN's quantized convolution was measured wrong by up to 126 LSB on layers of one input "
                f"channel per group, one output column and a column stride above 1{via}")
    return None


def qnnpack_kernel(spec: ConvSpec) -> str:
    """QNNPACK's micro-kernel family for ``spec`` (PyTorch's qnnpack_utils.h): ``dwconv``
    (3x3 or 5x5 depthwise), ``gemm`` (1x1 stride 1 unpadded) or ``conv`` (the indirect
    convolution: the Indirect Convolution paper's own kernel)."""
    if spec.kernel in ((3, 3), (5, 5)) and spec.channels_per_group == 1 and spec.out_channels_per_group == 1 \
            and spec.groups > 1:
        return "dwconv"
    if spec.is_pointwise:
        return "gemm"
    return "conv-indirect"


def qnnpack_isa() -> str:
    """The instruction set PyTorch's QNNPACK kernels use here (SSE2 only on x86)."""
    machine = platform.machine().lower()
    return "neon" if machine.startswith(("arm", "aarch")) else "sse2"


def what_runs(torch: Any, spec: ConvSpec, engine: str) -> str:
    """The engine and what it runs for ``spec``: ``x86-onednn``, ``x86-fbgemm``,
    ``fbgemm``, ``onednn`` or ``qnnpack-conv-indirect-sse2`` (the kernel family)."""
    name = resolve(torch, engine)
    if name == "qnnpack":
        return f"qnnpack-{qnnpack_kernel(spec)}-{qnnpack_isa()}"
    if name == "x86":
        return f"x86-{x86_backend(spec)}"
    return name


class _Engine:
    """``with _Engine(torch, name):`` the quantized engine set, then put back."""

    def __init__(self, torch: Any, name: str) -> None:
        self.torch, self.name = torch, name

    def __enter__(self) -> None:
        self.before = self.torch.backends.quantized.engine
        self.torch.backends.quantized.engine = self.name

    def __exit__(self, *exc: object) -> None:
        self.torch.backends.quantized.engine = self.before


def _padding(spec: ConvSpec) -> tuple[list[int], tuple[int, int, int, int] | None]:
    """(padding the packed conv gets, explicit pad (left, right, top, bottom) or None)."""
    top, bottom, left, right = spec.padding
    if top == bottom and left == right:
        return [top, left], None
    return [0, 0], (left, right, top, bottom)


def prepare(torch: Any, spec: ConvSpec, qw: QuantizedWeight, engine: str) -> ConvCall:
    """The call computing ``spec`` with PyTorch's quantized conv under ``engine``."""
    name = resolve(torch, engine)
    padding, pad = _padding(spec)
    nhwc = spec.layout == "nhwc"
    k = spec.out_channels
    w_scale = qw.w_scale.astype(np.float64)
    # torch takes a float bias and requantizes it with x_scale * w_scale[k]: hand it exactly that product
    bias = torch.from_numpy((qw.bias.astype(np.float64) * np.float64(qw.x_scale) * w_scale).astype(np.float32))
    with warnings.catch_warnings(), torch.inference_mode(), _Engine(torch, name):
        warnings.simplefilter("ignore", UserWarning)  # the constructors' deprecation notice (once per process)
        wq = torch._make_per_channel_quantized_tensor(
            torch.from_numpy(np.ascontiguousarray(qw.weight)), torch.from_numpy(w_scale),
            torch.zeros(k, dtype=torch.int64), 0)
        packed = torch.ops.quantized.conv2d_prepack(wq, bias, list(spec.stride), padding, list(spec.dilation),
                                                   spec.groups)
    make_q = torch._make_per_tensor_quantized_tensor
    conv = torch.ops.quantized.conv2d
    fpad = torch.nn.functional.pad
    x_scale, x_zero = float(qw.x_scale), int(qw.x_zero)
    y_scale, y_zero = float(qw.y_scale), int(qw.y_zero)

    def call(x: Array) -> Array:
        with torch.inference_mode():
            t = torch.from_numpy(x)
            if nhwc:
                t = t.permute(0, 3, 1, 2)  # a channels_last NCHW view, no copy
            if pad is not None:
                t = fpad(t, pad, value=x_zero)  # padding taps read the zero point
            y = conv(make_q(t, x_scale, x_zero), packed, y_scale, y_zero).int_repr()
            if nhwc:
                y = y.permute(0, 2, 3, 1)
            return np.ascontiguousarray(y.numpy())

    return call
