"""Ground truth for every correctness check, and the error measures.

Deliberately plain: zero-pad a float64 NCHW copy, then for each kernel tap
add one tensor contraction over the group's input channels. A ``u8s8`` spec
takes the same loops in int64 on ``x - x_zero`` (so padding is the zero
point), then the float64 requantization of :mod:`convbench.quant`. No code
here is shared with any algorithm under test.

The error of an answer is relative for float specs (:func:`relative_error`)
and in output units for quantized ones (``max_abs_err_lsb``);
:func:`conv_error` gives whichever the spec's dtype uses.
"""

from __future__ import annotations

import numpy as np

from .quant import QuantizedWeight, max_abs_err_lsb, requantize_reference
from .spec import ConvSpec

#: Smallest denominator of the relative error, so an all-zero reference
#: does not divide by zero.
TINY = np.finfo(np.float64).tiny


def reference(spec: ConvSpec, x: np.ndarray, weight: np.ndarray | QuantizedWeight) -> np.ndarray:
    """The convolution of ``x`` by ``weight`` in float64, in ``spec.layout``.

    For a quantized spec (``u8s8``) ``weight`` is a :class:`QuantizedWeight`
    and the answer is the exact uint8 output (:func:`reference_u8`).
    """
    if spec.is_quantized:
        return reference_u8(spec, x, weight)  # type: ignore[arg-type]
    if tuple(x.shape) != spec.input_shape:
        raise ValueError(f"reference: x has shape {x.shape}, spec wants {spec.input_shape}")
    if tuple(weight.shape) != spec.weight_shape:
        raise ValueError(f"reference: weight has shape {weight.shape}, spec wants {spec.weight_shape}")
    y = _accumulate(spec, np.asarray(x, dtype=np.float64), np.asarray(weight, dtype=np.float64), 0.0)
    return y.transpose(0, 2, 3, 1).copy() if spec.layout == "nhwc" else y


def reference_u8(spec: ConvSpec, x: np.ndarray, qw: QuantizedWeight) -> np.ndarray:
    """The exact uint8 output of a ``u8s8`` layer (ONNX ``QLinearConv``), in ``spec.layout``.

    The same taps as the float reference, in int64: padding reads
    ``qw.x_zero``, the bias is added, and
    :func:`convbench.quant.requantize_reference` rounds in float64 (ties to
    even) and saturates.
    """
    if not isinstance(qw, QuantizedWeight):
        raise TypeError(f"reference: a {spec.dtype} spec needs a convbench.quant.QuantizedWeight, "
                        f"got {type(qw).__name__}")
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or tuple(x.shape) != spec.input_shape:
        got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"reference: x must be uint8 of shape {spec.input_shape}, got {got}")
    if qw.shape != spec.weight_shape:
        raise ValueError(f"reference: weight has shape {qw.shape}, spec wants {spec.weight_shape}")
    acc = _accumulate(spec, x.astype(np.int64) - qw.x_zero, qw.weight.astype(np.int64), 0)
    acc += qw.bias.astype(np.int64).reshape(1, -1, 1, 1)
    y = requantize_reference(acc, qw, channel_axis=1)
    return y.transpose(0, 2, 3, 1).copy() if spec.layout == "nhwc" else y


def _accumulate(spec: ConvSpec, x: np.ndarray, w: np.ndarray, pad_value: float | int) -> np.ndarray:
    """NCHW sum over taps and the group's channels, in ``x``'s dtype (float64 or int64).

    ``x`` is in ``spec.layout`` and padded with ``pad_value`` (the quantized
    path shifts ``x`` by its zero point first, so padding is 0 there too).
    """
    if spec.layout == "nhwc":
        x = x.transpose(0, 3, 1, 2)
    n, c, _, _ = x.shape
    g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
    top, bottom, left, right = spec.padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=pad_value)
    xp = xp.reshape(n, g, cg, xp.shape[2], xp.shape[3])
    wg = w.reshape(g, kg, cg, spec.kernel_h, spec.kernel_w)
    oh, ow = spec.output_height, spec.output_width
    sh, sw = spec.stride
    dh, dw = spec.dilation
    y = np.zeros((n, g, kg, oh, ow), dtype=x.dtype)
    for r in range(spec.kernel_h):
        for s in range(spec.kernel_w):
            # input pixel for output (i, j) and tap (r, s): (i*sh + r*dh, j*sw + s*dw)
            patch = xp[:, :, :, r * dh : r * dh + (oh - 1) * sh + 1 : sh,
                             s * dw : s * dw + (ow - 1) * sw + 1 : sw]
            y += np.einsum("ngchw,gkc->ngkhw", patch, wg[:, :, :, r, s])
    return y.reshape(n, g * kg, oh, ow)


def relative_error(y: np.ndarray, ref: np.ndarray, floor: float = 0.0) -> float:
    """``max|y - ref| / max(max|ref|, floor, tiny)``: the one error measure convbench uses.

    ``floor`` (see :func:`error_floor`) keeps the measure meaningful when the
    reference is (nearly) all zero, e.g. an output whose every receptive
    field lies in the padding: there an FFT's 1e-10 residue is not an error
    of 1e+298. For any real layer ``max|ref|`` exceeds the floor and the
    measure is the plain relative one.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.shape != ref.shape:
        raise ValueError(f"output has shape {y.shape}, expected {ref.shape}")
    if not np.all(np.isfinite(y)):
        return float("inf")
    scale = max(float(np.max(np.abs(ref), initial=0.0)), floor, TINY)
    return float(np.max(np.abs(y - ref), initial=0.0) / scale)


def error_floor(x: np.ndarray, weight: np.ndarray | QuantizedWeight) -> float:
    """The size of one product term, ``max|x| * max|w|``: the floor of the error scale
    (0 for a quantized weight, whose error is counted in output units, not relative)."""
    if isinstance(weight, QuantizedWeight):
        return 0.0
    return float(np.max(np.abs(x), initial=0.0)) * float(np.max(np.abs(weight), initial=0.0))


def conv_error(spec: ConvSpec, y: np.ndarray, x: np.ndarray, weight: np.ndarray | QuantizedWeight) -> float:
    """The error of ``y`` as the convolution of ``x`` by ``weight``, in the spec's measure:
    relative for a float spec, in output units (LSB, ``max_abs_err_lsb``) for a quantized one."""
    if spec.is_quantized:
        y = np.asarray(y)
        ref = reference_u8(spec, x, weight)  # type: ignore[arg-type]
        if y.shape != ref.shape:
            raise ValueError(f"output has shape {y.shape}, expected {ref.shape}")
        return float(max_abs_err_lsb(y, ref))
    return relative_error(y, reference(spec, x, weight), floor=error_floor(x, weight))
