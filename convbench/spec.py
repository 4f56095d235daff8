"""ConvSpec: one convolution problem, validated once, with its derived sizes.

Conventions are PyTorch's: weights are OIHW ``(K, C // groups, R, S)``,
NCHW is ``(N, C, H, W)`` and NHWC is ``(N, H, W, C)``. Padding may be an int,
``(ph, pw)`` or ``(top, bottom, left, right)``.

The dtype is ``float32``, ``float64`` or the 8-bit quantized ``u8s8``
(:mod:`convbench.quant`): a ``u8s8`` spec's input and output are uint8
(``np_dtype``, ``itemsize`` 1) and its weight is a
:class:`~convbench.quant.QuantizedWeight`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from .quant import QUANT_DTYPES, QuantizedWeight, draw_quantized

LAYOUTS = ("nchw", "nhwc")
#: The float dtypes (numpy's names).
FLOAT_DTYPES = ("float32", "float64")
#: Every ConvSpec dtype: the floats, then the quantized ones (:mod:`convbench.quant`).
DTYPES = FLOAT_DTYPES + QUANT_DTYPES


class SpecFieldError(ValueError):
    """A ConvSpec field has a bad value; ``field``, ``expected`` and ``got`` let callers
    (a config file, the command line) word the message their way."""

    def __init__(self, field: str, expected: str, got: Any):
        super().__init__(f"The '{field}' parameter of ConvSpec must be {expected}. Got {got!r} instead.")
        self.field, self.expected, self.got = field, expected, got


def _bad(field: str, expected: str, got: Any) -> ValueError:
    return SpecFieldError(field, expected, got)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _pair(field: str, value: Any, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints >= minimum, as a pair."""
    pair = (value, value) if _is_int(value) else value
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(_is_int(v) and v >= minimum for v in pair)
    ):
        raise _bad(field, f"an int >= {minimum} or a pair of them", value)
    return int(pair[0]), int(pair[1])


def _padding(value: Any) -> tuple[int, int, int, int]:
    """Padding as (top, bottom, left, right) from an int, (ph, pw) or 4-tuple."""
    expected = "an int >= 0, a pair (ph, pw) or a 4-tuple (top, bottom, left, right) of them"
    if _is_int(value):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not all(_is_int(v) and v >= 0 for v in value):
        raise _bad("padding", expected, value)
    if len(value) == 1:
        return (int(value[0]),) * 4
    if len(value) == 2:
        ph, pw = value
        return int(ph), int(ph), int(pw), int(pw)
    if len(value) == 4:
        return tuple(int(v) for v in value)  # type: ignore[return-value]
    raise _bad("padding", expected, value)


def _positive_int(field: str, value: Any) -> int:
    if not _is_int(value) or value < 1:
        raise _bad(field, "an int >= 1", value)
    return int(value)


def _layout(value: Any) -> str:
    layout = value.lower() if isinstance(value, str) else value
    if layout not in LAYOUTS:
        raise _bad("layout", "one of 'nchw', 'nhwc'", value)
    return layout


def _dtype(value: Any) -> str:
    if isinstance(value, str) and value.lower() in QUANT_DTYPES:
        return value.lower()
    try:
        dtype = np.dtype(value).name if value is not None else None
    except (TypeError, ValueError):  # np.dtype({"x": 1}) is a ValueError
        dtype = None
    if dtype not in FLOAT_DTYPES:
        raise _bad("dtype", "one of " + ", ".join(repr(d) for d in DTYPES), value)
    return dtype


#: The rule of each field on its own (cross-field rules live in ConvSpec).
_FIELD_RULES = {
    **{name: (lambda v, name=name: _positive_int(name, v))
       for name in ("batch", "in_channels", "out_channels", "height", "width", "groups")},
    "kernel": lambda v: _pair("kernel", v, 1),
    "stride": lambda v: _pair("stride", v, 1),
    "dilation": lambda v: _pair("dilation", v, 1),
    "padding": _padding,
    "layout": _layout,
    "dtype": _dtype,
}


def check_field(name: str, value: Any) -> Any:
    """One ConvSpec field checked on its own and normalised (pairs as tuples,
    padding as a 4-tuple, numpy integers as ints); :class:`SpecFieldError` if bad.

    The one home of the field rules: ConvSpec and the config schema call it.
    """
    return _FIELD_RULES[name](value)


@dataclass(frozen=True)
class ConvSpec:
    """One 2-D convolution (cross-correlation, as in every DL framework).

    ``kernel``, ``stride`` and ``dilation`` take an int or ``(h, w)``;
    ``padding`` takes an int, ``(ph, pw)`` or ``(top, bottom, left, right)``.
    They are stored normalised: ``kernel``, ``stride``, ``dilation`` as pairs
    and ``padding`` as a 4-tuple. Invalid values raise ``ValueError`` naming
    the field.
    """

    batch: int
    in_channels: int
    out_channels: int
    height: int
    width: int
    kernel: Any
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    layout: str = "nchw"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("batch", "in_channels", "out_channels", "height", "width", "groups",
                     "kernel", "stride", "dilation", "padding", "layout", "dtype"):
            object.__setattr__(self, name, check_field(name, getattr(self, name)))
        for name, channels in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if channels % self.groups:
                raise ValueError(
                    f"The '{name}' parameter of ConvSpec ({channels}) must be divisible "
                    f"by 'groups' ({self.groups})."
                )
        for i, (axis, size, field, pads) in enumerate((
            ("output_height", self.output_height, "height", (self.pad_top, self.pad_bottom)),
            ("output_width", self.output_width, "width", (self.pad_left, self.pad_right)),
        )):
            if size < 1:
                raise ValueError(
                    f"ConvSpec gives {axis} = {size} < 1: the 'kernel' {self.kernel[i]} with "
                    f"'dilation' {self.dilation[i]} spans {self.effective_kernel[i]} and does not "
                    f"fit the '{field}' {getattr(self, field)} plus 'padding' {pads[0]}+{pads[1]}. "
                    "Use a smaller kernel or dilation, or more padding."
                )

    # -- normalised scalar views ------------------------------------------
    kernel_h = property(lambda self: self.kernel[0])
    kernel_w = property(lambda self: self.kernel[1])
    stride_h = property(lambda self: self.stride[0])
    stride_w = property(lambda self: self.stride[1])
    dilation_h = property(lambda self: self.dilation[0])
    dilation_w = property(lambda self: self.dilation[1])
    pad_top = property(lambda self: self.padding[0])
    pad_bottom = property(lambda self: self.padding[1])
    pad_left = property(lambda self: self.padding[2])
    pad_right = property(lambda self: self.padding[3])

    @property
    def effective_kernel(self) -> tuple[int, int]:
        """Extent of the dilated kernel: ``dilation * (R - 1) + 1`` per axis."""
        return (
            self.dilation_h * (self.kernel_h - 1) + 1,
            self.dilation_w * (self.kernel_w - 1) + 1,
        )

    @property
    def output_height(self) -> int:
        padded = self.height + self.pad_top + self.pad_bottom
        return (padded - self.effective_kernel[0]) // self.stride_h + 1

    @property
    def output_width(self) -> int:
        padded = self.width + self.pad_left + self.pad_right
        return (padded - self.effective_kernel[1]) // self.stride_w + 1

    @property
    def channels_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_channels_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def is_depthwise(self) -> bool:
        """Each group sees exactly one input channel (MobileNet's dw layers)."""
        return self.groups == self.in_channels and self.groups > 1

    @property
    def is_pointwise(self) -> bool:
        """1x1, stride 1, unpadded: the NHWC input already is the im2col matrix."""
        return self.kernel == (1, 1) and self.stride == (1, 1) and not any(self.padding)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        n, c, h, w = self.batch, self.in_channels, self.height, self.width
        return (n, c, h, w) if self.layout == "nchw" else (n, h, w, c)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        n, k, h, w = self.batch, self.out_channels, self.output_height, self.output_width
        return (n, k, h, w) if self.layout == "nchw" else (n, h, w, k)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.channels_per_group, self.kernel_h, self.kernel_w)

    @property
    def is_quantized(self) -> bool:
        """An 8-bit quantized spec (``u8s8``): uint8 data, a QuantizedWeight."""
        return self.dtype in QUANT_DTYPES

    @property
    def np_dtype(self) -> np.dtype:
        """The dtype of the input and output arrays (uint8 for ``u8s8``)."""
        return np.dtype(np.uint8) if self.is_quantized else np.dtype(self.dtype)

    @property
    def flops(self) -> int:
        """Direct-equivalent FLOPs: ``2*N*OH*OW*K*(C/groups)*R*S`` (integer
        operations for a quantized spec: its rates are GOP/s)."""
        return (
            2 * self.batch * self.output_height * self.output_width * self.out_channels
            * self.channels_per_group * self.kernel_h * self.kernel_w
        )

    @property
    def itemsize(self) -> int:
        """Bytes per element of input, output and weight (1 for ``u8s8``)."""
        return self.np_dtype.itemsize

    @property
    def input_bytes(self) -> int:
        return int(np.prod(self.input_shape)) * self.itemsize

    @property
    def output_bytes(self) -> int:
        return int(np.prod(self.output_shape)) * self.itemsize

    @property
    def weight_bytes(self) -> int:
        return int(np.prod(self.weight_shape)) * self.itemsize

    def replace(self, **changes: Any) -> "ConvSpec":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """A short human label, e.g. ``1x64x56x56 3x3/s1 p1 ->64 g1 nhwc f32``."""
        k, s, d = self.kernel, self.stride, self.dilation
        pad = self.padding
        pad_s = str(pad[0]) if len(set(pad)) == 1 else "(" + ",".join(map(str, pad)) + ")"
        parts = [
            f"{self.batch}x{self.in_channels}x{self.height}x{self.width}",
            f"{k[0]}x{k[1]}/s{s[0] if s[0] == s[1] else s}",
            f"p{pad_s}",
        ]
        if d != (1, 1):
            parts.append(f"d{d[0] if d[0] == d[1] else d}")
        parts.append(f"->{self.out_channels}")
        if self.groups > 1:
            parts.append("dw" if self.is_depthwise else f"g{self.groups}")
        parts += [self.layout, self.dtype.replace("float", "f")]
        return " ".join(parts)

    def random_inputs(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray | QuantizedWeight]:
        """Seeded ``(x, weight)`` in the spec's layout and dtype, values in [-1, 1).

        For a quantized spec: ``(x, QuantizedWeight)`` from
        :func:`convbench.quant.draw_quantized` (uint8 ``x``; scales, zero
        points and bias drawn from the same seed).
        """
        rng = np.random.default_rng(seed)
        if self.is_quantized:
            return draw_quantized(self.weight_shape, self.input_shape, rng)
        x = rng.uniform(-1.0, 1.0, self.input_shape).astype(self.dtype)
        w = rng.uniform(-1.0, 1.0, self.weight_shape).astype(self.dtype)
        return x, w
