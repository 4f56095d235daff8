"""Float64 ground truth for every correctness check, and the error measure.

Deliberately plain: zero-pad a float64 NCHW copy, then for each kernel tap
add one tensor contraction over the group's input channels. No code here is
shared with any algorithm under test.
"""

from __future__ import annotations

import numpy as np

from .spec import ConvSpec

#: Smallest denominator of the relative error, so an all-zero reference
#: does not divide by zero.
TINY = np.finfo(np.float64).tiny


def reference(spec: ConvSpec, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The convolution of ``x`` by ``weight`` in float64, in ``spec.layout``."""
    if tuple(x.shape) != spec.input_shape:
        raise ValueError(f"reference: x has shape {x.shape}, spec wants {spec.input_shape}")
    if tuple(weight.shape) != spec.weight_shape:
        raise ValueError(f"reference: weight has shape {weight.shape}, spec wants {spec.weight_shape}")
    x = np.asarray(x, dtype=np.float64)
    if spec.layout == "nhwc":
        x = x.transpose(0, 3, 1, 2)
    w = np.asarray(weight, dtype=np.float64)
    n, c, _, _ = x.shape
    g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
    top, bottom, left, right = spec.padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    xp = xp.reshape(n, g, cg, xp.shape[2], xp.shape[3])
    wg = w.reshape(g, kg, cg, spec.kernel_h, spec.kernel_w)
    oh, ow = spec.output_height, spec.output_width
    sh, sw = spec.stride
    dh, dw = spec.dilation
    y = np.zeros((n, g, kg, oh, ow))
    for r in range(spec.kernel_h):
        for s in range(spec.kernel_w):
            # input pixel for output (i, j) and tap (r, s): (i*sh + r*dh, j*sw + s*dw)
            patch = xp[:, :, :, r * dh : r * dh + (oh - 1) * sh + 1 : sh,
                             s * dw : s * dw + (ow - 1) * sw + 1 : sw]
            y += np.einsum("ngchw,gkc->ngkhw", patch, wg[:, :, :, r, s])
    y = y.reshape(n, g * kg, oh, ow)
    return y.transpose(0, 2, 3, 1).copy() if spec.layout == "nhwc" else y


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


def error_floor(x: np.ndarray, weight: np.ndarray) -> float:
    """The size of one product term, ``max|x| * max|w|``: the floor of the error scale."""
    return float(np.max(np.abs(x), initial=0.0)) * float(np.max(np.abs(weight), initial=0.0))


def conv_error(spec: ConvSpec, y: np.ndarray, x: np.ndarray, weight: np.ndarray) -> float:
    """Relative error of ``y`` as the convolution of ``x`` by ``weight``."""
    return relative_error(y, reference(spec, x, weight), floor=error_floor(x, weight))
