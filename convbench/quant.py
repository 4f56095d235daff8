"""8-bit quantized convolution: the ``u8s8`` data type, as ONNX ``QLinearConv`` defines it.

A ``u8s8`` layer takes u8 activations with a zero point, s8 weights that are
symmetric per output channel (zero point 0, one scale per channel) and an
int32 bias; it accumulates in int32 and requantizes to a u8 output with the
output's scale and zero point::

    acc[k]  = bias[k] + sum((x - x_zero) * w[k])          (exact, integers)
    y[k]    = saturate_u8(round_half_even(acc[k] * x_scale * w_scale[k] / y_scale) + y_zero)

Padding taps read ``x_zero`` (the real value 0), never the integer 0.

For a ``u8s8`` spec the ``weight`` handed to ``Algorithm.prepare`` is a
:class:`QuantizedWeight` (the s8 OIHW array with its scales, zero points and
bias), ``x`` is a u8 array of ``spec.input_shape`` and the call returns a u8
array of ``spec.output_shape``. The correctness measure is the largest
difference from :func:`reference_u8` in output units (``max_abs_err_lsb``):
0 expected, 1 allowed (a float32 requantization can land on the other side
of a rounding tie), never more.

Scales are float32, as ONNX stores them; the reference computes the
requantization in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The quantized data types (ConvSpec.dtype values that are not numpy dtypes).
QUANT_DTYPES = ("u8s8",)
#: Largest ``max_abs_err_lsb`` that still counts as correct.
LSB_TOLERANCE = 1


@dataclass(frozen=True, eq=False)
class QuantizedWeight:
    """The weight of a ``u8s8`` layer, with everything needed to requantize.

    ``weight``: int8 OIHW ``(K, C // groups, R, S)``, symmetric (zero point 0).
    ``w_scale``: float32 ``(K,)``, one positive scale per output channel.
    ``bias``: int32 ``(K,)``, in units of ``x_scale * w_scale[k]``.
    ``x_scale``, ``x_zero``: the input's scale (> 0) and zero point (0..255).
    ``y_scale``, ``y_zero``: the output's scale (> 0) and zero point (0..255).
    """

    weight: np.ndarray
    w_scale: np.ndarray
    bias: np.ndarray
    x_scale: float
    x_zero: int
    y_scale: float
    y_zero: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.weight.shape)

    def copy(self) -> "QuantizedWeight":
        """A copy with copies of the arrays (as ``ndarray.copy`` for a float weight)."""
        return QuantizedWeight(weight=self.weight.copy(), w_scale=self.w_scale.copy(), bias=self.bias.copy(),
                               x_scale=self.x_scale, x_zero=self.x_zero, y_scale=self.y_scale, y_zero=self.y_zero)

    def multiplier(self) -> np.ndarray:
        """``x_scale * w_scale / y_scale`` per output channel, float32 (the kernels' requantization)."""
        return (np.float32(self.x_scale) * self.w_scale.astype(np.float32) / np.float32(self.y_scale)).astype(np.float32)

    def describe(self) -> str:
        """One line for a row's ``quant`` column."""
        ws = self.w_scale
        return (f"x_scale={self.x_scale:.6g} x_zero={self.x_zero} y_scale={self.y_scale:.6g} "
                f"y_zero={self.y_zero} w_scale=[{float(ws.min()):.6g},{float(ws.max()):.6g}] "
                f"bias=[{int(self.bias.min())},{int(self.bias.max())}]")


def draw_quantized(weight_shape: tuple[int, int, int, int], input_shape: tuple[int, ...],
                   rng: np.random.Generator) -> tuple[np.ndarray, QuantizedWeight]:
    """A seeded ``(x, QuantizedWeight)`` whose outputs use the whole u8 range and
    saturate at both ends on a few percent of values.

    The output scale is set from the accumulator's spread (known from the
    draws), so that about +-2.7 standard deviations span the u8 range.
    """
    k, cg, r, s = weight_shape
    x_zero = int(rng.integers(0, 256))
    x = rng.integers(0, 256, size=input_shape, dtype=np.uint8)
    w = rng.integers(-127, 128, size=weight_shape, dtype=np.int8)
    x_scale = np.float32(rng.uniform(0.005, 0.05))
    w_scale = rng.uniform(0.5, 2.0, size=k).astype(np.float32) * np.float32(rng.uniform(0.002, 0.02))
    # E[(x - x_zero)^2] for x uniform on 0..255, times E[w^2], times the terms per output
    x_dev = np.sqrt((255 * 257) / 12.0 + (127.5 - x_zero) ** 2)
    acc_std = x_dev * np.sqrt((127 * 128) / 3.0) * np.sqrt(cg * r * s)
    bias = np.round(rng.normal(0.0, acc_std / 2, size=k)).astype(np.int32)
    y_scale = np.float32(x_scale * float(np.median(w_scale)) * acc_std / 48.0)
    y_zero = int(rng.integers(96, 161))
    return x, QuantizedWeight(weight=w, w_scale=w_scale, bias=bias, x_scale=float(x_scale),
                              x_zero=x_zero, y_scale=float(y_scale), y_zero=y_zero)


def requantize_reference(acc: np.ndarray, qw: QuantizedWeight, channel_axis: int) -> np.ndarray:
    """int64 accumulators (bias included) to u8, in float64, ties to even, saturated."""
    mult = np.float64(qw.x_scale) * qw.w_scale.astype(np.float64) / np.float64(qw.y_scale)
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    y = np.rint(acc.astype(np.float64) * mult.reshape(shape)) + qw.y_zero
    return np.clip(y, 0, 255).astype(np.uint8)


def max_abs_err_lsb(y: np.ndarray, ref: np.ndarray) -> int:
    """Largest difference between two u8 outputs, in output units."""
    return int(np.max(np.abs(y.astype(np.int16) - ref.astype(np.int16)), initial=0))
