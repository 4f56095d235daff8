"""The conformance battery's cases: the shape table, and the 8-bit corners.

:mod:`convbench.testing` runs its checks on these (and re-exports them).
The shape table is every MobileNet v1 layer scaled down plus odd shapes
(tile remainders, strides, dilation, asymmetric padding, groups, depthwise,
batch, rectangular kernels, a 1x1 output), in every layout and dtype asked.

A ``u8s8`` spec of the battery is a :class:`BatterySpec`: a ConvSpec whose
``random_inputs`` draws a chosen corner of the quantization parameters
(:data:`QUANT_CORNERS`): zero points 0, 128 and 255 (padding then reads a
zero point at both ends of the range), tiny and huge multipliers, outputs
saturated at both ends, and multipliers that are powers of two so that
requantization lands exactly on rounding ties. Every table shape is in the
8-bit battery with the seed's own draw (``drawn``); the corners on a few
shapes with padding, groups, depthwise and stride (:data:`CORNER_SHAPES`).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from .quant import QUANT_DTYPES, QuantizedWeight
from .spec import FLOAT_DTYPES, LAYOUTS, ConvSpec

# -- the shape table ------------------------------------------------------------

#: Every MobileNet v1 convolution, spatial size / 8 and channels / 16:
#: (input size, kernel, stride, in, out, depthwise).
_MOBILENET_V1_SCALED = [
    (28, 3, 2, 3, 2, False), (14, 3, 1, 2, 2, True), (14, 1, 1, 2, 4, False),
    (14, 3, 2, 4, 4, True), (7, 1, 1, 4, 8, False), (7, 3, 1, 8, 8, True),
    (7, 1, 1, 8, 8, False), (7, 3, 2, 8, 8, True), (4, 1, 1, 8, 16, False),
    (4, 3, 1, 16, 16, True), (4, 1, 1, 16, 16, False), (4, 3, 2, 16, 16, True),
    (2, 1, 1, 16, 32, False), (2, 3, 1, 32, 32, True), (2, 1, 1, 32, 32, False),
    (2, 3, 2, 32, 32, True), (1, 1, 1, 32, 64, False), (1, 3, 1, 64, 64, True),
    (1, 1, 1, 64, 64, False),
]


def _mobilenet_cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for i, (size, k, s, cin, cout, dw) in enumerate(_MOBILENET_V1_SCALED):
        cases.append((
            f"mobilenet{i:02d}-{'dw' if dw else ''}{k}x{k}s{s}-{cin}to{cout}",
            dict(batch=1, in_channels=cin, out_channels=cout, height=size, width=size,
                 kernel=k, stride=s, padding=k // 2, groups=cin if dw else 1),
        ))
    return cases


def _c(batch=1, cin=3, cout=5, h=7, w=9, kernel=3, stride=1, padding=0, dilation=1, groups=1):
    return dict(batch=batch, in_channels=cin, out_channels=cout, height=h, width=w,
                kernel=kernel, stride=stride, padding=padding, dilation=dilation, groups=groups)


#: Odd shapes: tile remainders, strides, dilation, asymmetric padding,
#: groups, batch, rectangular kernels and inputs, a 1x1 output.
ODD_CASES: list[tuple[str, dict[str, Any]]] = [
    ("1x1-s1", _c(cin=17, cout=5, kernel=1)),
    ("1x1-s2", _c(cin=5, cout=17, h=9, w=8, kernel=1, stride=2)),
    ("1x1-s1-pad1", _c(cin=3, cout=3, kernel=1, padding=1)),
    ("3x3-p0", _c(cin=5, cout=17, kernel=3)),
    ("3x3-p1", _c(cin=17, cout=3, kernel=3, padding=1)),
    ("3x3-p2", _c(cin=3, cout=5, kernel=3, padding=2)),
    ("3x3-s2-p1", _c(cin=5, cout=5, h=9, w=10, kernel=3, stride=2, padding=1)),
    ("3x3-s3", _c(cin=3, cout=5, h=11, w=10, kernel=3, stride=3, padding=1)),
    ("3x3-asym-pad", _c(cin=5, cout=3, kernel=3, padding=(0, 2, 1, 0))),
    ("3x3-pad-hw", _c(cin=3, cout=5, kernel=3, padding=(2, 1))),
    ("3x3-dil2", _c(cin=3, cout=5, h=9, w=9, kernel=3, dilation=2, padding=2)),
    ("3x3-dil2-s2", _c(cin=3, cout=3, h=10, w=11, kernel=3, stride=2, dilation=2, padding=1)),
    ("5x5-p0", _c(cin=3, cout=5, h=9, w=8, kernel=5)),
    ("5x5-p2", _c(cin=5, cout=3, h=8, w=9, kernel=5, padding=2)),
    ("7x7-s2-p3", _c(cin=3, cout=5, h=13, w=12, kernel=7, stride=2, padding=3)),
    ("groups2", _c(cin=6, cout=10, kernel=3, padding=1, groups=2)),
    ("groups3-s2", _c(cin=9, cout=3, h=8, w=8, kernel=3, stride=2, groups=3)),
    ("depthwise", _c(cin=5, cout=5, kernel=3, padding=1, groups=5)),
    ("depthwise-mult2", _c(cin=3, cout=6, kernel=3, padding=1, groups=3)),
    ("depthwise-s2", _c(cin=17, cout=17, h=9, w=9, kernel=3, stride=2, padding=1, groups=17)),
    ("c1-k1", _c(cin=1, cout=1, kernel=3, padding=1)),
    ("c1-k17", _c(cin=1, cout=17, kernel=3)),
    ("batch3", _c(batch=3, cin=5, cout=3, kernel=3, padding=1)),
    ("batch3-1x1", _c(batch=3, cin=5, cout=3, kernel=1)),
    ("kernel-1x5", _c(cin=3, cout=5, kernel=(1, 5), padding=(0, 2))),
    ("kernel-5x1", _c(cin=5, cout=3, kernel=(5, 1), padding=(2, 0))),
    ("kernel-3x1-s-2x1", _c(cin=3, cout=3, kernel=(3, 1), stride=(2, 1))),
    ("output-1x1", _c(cin=5, cout=3, h=3, w=3, kernel=3)),
    ("tall-input", _c(cin=3, cout=3, h=13, w=2, kernel=3, padding=1)),
]



def conformance_cases() -> list[tuple[str, dict[str, Any]]]:
    """(id, ConvSpec kwargs without layout/dtype) for the whole shape table."""
    return _mobilenet_cases() + ODD_CASES


# -- the 8-bit corners ----------------------------------------------------------------

Corner = Callable[[ConvSpec, np.ndarray, QuantizedWeight], tuple[np.ndarray, QuantizedWeight]]


def _zero_points(z: int) -> Corner:
    return lambda spec, x, qw: (x, dataclasses.replace(qw, x_zero=z, y_zero=z))


def _scaled(factor: float) -> Corner:
    """The output scale times ``factor``: the multiplier divided by it."""
    return lambda spec, x, qw: (x, dataclasses.replace(qw, y_scale=float(np.float32(qw.y_scale * factor))))


def _saturated(spec: ConvSpec, x: np.ndarray, qw: QuantizedWeight) -> tuple[np.ndarray, QuantizedWeight]:
    """A bias beyond any sum of products: even channels all 255, odd ones all 0."""
    span = 2 * 255 * 128 * spec.channels_per_group * spec.kernel_h * spec.kernel_w
    sign = np.where(np.arange(spec.out_channels) % 2 == 0, 1, -1)
    return x, dataclasses.replace(qw, bias=(sign * min(span, 2**29)).astype(np.int32))


def _ties(spec: ConvSpec, x: np.ndarray, qw: QuantizedWeight) -> tuple[np.ndarray, QuantizedWeight]:
    """Inputs near their zero point, small weights and a power-of-two multiplier 2^-k (exact in
    float32 too), so that ``acc * multiplier`` often lies exactly halfway (one output in 2^k):
    requantization must round ties to even."""
    x = np.clip(qw.x_zero + (x.astype(np.int64) - 128) // 16, 0, 255).astype(np.uint8)  # x_zero -8..+7
    w = (qw.weight >> 4).astype(np.int8)  # -8..7
    terms = spec.channels_per_group * spec.kernel_h * spec.kernel_w
    x_rms = float(np.sqrt(np.mean((x.astype(np.float64) - qw.x_zero) ** 2)))
    acc_std = max(x_rms * float(np.sqrt(np.mean(w.astype(np.float64) ** 2))) * np.sqrt(terms), 2.0)
    k = max(1, int(round(np.log2(acc_std / 32))))
    return x, dataclasses.replace(qw, weight=w, w_scale=np.full(spec.out_channels, 2.0**-k, np.float32),
                                  bias=np.zeros(spec.out_channels, np.int32), x_scale=1.0, y_scale=1.0, y_zero=128)


#: The corners of the quantization parameters, by name (``drawn``: the seed's own draw).
QUANT_CORNERS: dict[str, Corner] = {
    "drawn": lambda spec, x, qw: (x, qw),
    "zp0": _zero_points(0),
    "zp128": _zero_points(128),
    "zp255": _zero_points(255),
    "tiny-scale": _scaled(2.0**16),   # multiplier / 65536: outputs y_zero and its neighbours
    "huge-scale": _scaled(2.0**-12),  # multiplier x 4096: nearly every output saturates
    "saturated": _saturated,
    "ties": _ties,
}

#: The shapes every corner is checked on: padding (a padding tap reads the zero point),
#: asymmetric padding, stride 2, groups, depthwise.
CORNER_SHAPES = ("3x3-p1", "3x3-asym-pad", "3x3-s2-p1", "groups2", "depthwise")


@dataclass(frozen=True)
class BatterySpec(ConvSpec):
    """A ConvSpec of the 8-bit battery: ``random_inputs`` draws the corner ``quant`` names."""

    quant: str = "drawn"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.quant not in QUANT_CORNERS:
            raise ValueError(f"BatterySpec: quant must be one of {', '.join(QUANT_CORNERS)}, got {self.quant!r}")

    def describe(self) -> str:
        return super().describe() + ("" if self.quant == "drawn" else f" [{self.quant}]")

    def random_inputs(self, seed: int = 0) -> tuple[np.ndarray, Any]:
        x, qw = super().random_inputs(seed)
        return QUANT_CORNERS[self.quant](self, x, qw) if self.is_quantized else (x, qw)


def quantized_specs(layouts: Iterable[str] = LAYOUTS, dtype: str = "u8s8") -> list[tuple[str, ConvSpec]]:
    """The 8-bit battery: every table shape with its drawn parameters, then every corner
    of :data:`QUANT_CORNERS` on :data:`CORNER_SHAPES`, in each layout, as (id, spec)."""
    layouts = tuple(layouts)
    shapes = dict(conformance_cases())
    specs = [(f"{cid}-{layout}-{dtype}", BatterySpec(**kw, layout=layout, dtype=dtype))
             for (cid, kw), layout in itertools.product(conformance_cases(), layouts)]
    for corner, cid, layout in itertools.product([c for c in QUANT_CORNERS if c != "drawn"], CORNER_SHAPES, layouts):
        specs.append((f"{cid}-{corner}-{layout}-{dtype}",
                      BatterySpec(**shapes[cid], layout=layout, dtype=dtype, quant=corner)))
    return specs


def conformance_specs(
    layouts: Iterable[str] = LAYOUTS, dtypes: Iterable[str] = (*FLOAT_DTYPES, *QUANT_DTYPES)
) -> list[tuple[str, ConvSpec]]:
    """Every table shape in every layout and float dtype, then the 8-bit battery
    (:func:`quantized_specs`) of each quantized dtype asked, as (id, spec)."""
    layouts, dtypes = tuple(layouts), tuple(dtypes)
    specs = []
    floats = [d for d in dtypes if d not in QUANT_DTYPES]
    for (case_id, kwargs), layout, dtype in itertools.product(conformance_cases(), layouts, floats):
        specs.append((f"{case_id}-{layout}-{dtype}", ConvSpec(**kwargs, layout=layout, dtype=dtype)))
    for dtype in (d for d in dtypes if d in QUANT_DTYPES):
        specs += quantized_specs(layouts, dtype)
    return specs
