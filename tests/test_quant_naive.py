"""naive's u8s8 path (issue 24): the seven loops in int32 with the contract's zero-point
correction and float32 requantization, exact at the extremes of u8 x s8, and a kernel
caller that refuses arrays that do not fit together instead of reading past them."""

from __future__ import annotations

import numpy as np
import pytest

import convbench
from convbench.kernels.direct import direct_u8_nhwc, pack_direct, u8_start
from convbench.quant import QuantizedWeight, max_abs_err_lsb
from convbench.reference import reference


def _extreme(spec, x_value, w_value, x_zero, bias=0):
    k = spec.out_channels
    qw = QuantizedWeight(weight=np.full(spec.weight_shape, w_value, np.int8), w_scale=np.full(k, 2.0**-18, np.float32),
                         bias=np.full(k, bias, np.int32), x_scale=1.0, x_zero=x_zero, y_scale=1.0, y_zero=128)
    return np.full(spec.input_shape, x_value, np.uint8), qw


@pytest.mark.parametrize("x_value, w_value, x_zero", [(255, -128, 0), (255, 127, 0), (0, -128, 255), (0, 127, 255)])
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_naive_u8s8_is_exact_at_the_extremes_of_u8_times_s8(x_value, w_value, x_zero, layout):
    # 64 channels x 9 taps of 255 * 128: |acc| ~ 1.9e7, past float32's exact integers (2^24)
    spec = convbench.ConvSpec(batch=1, in_channels=64, out_channels=4, height=4, width=4, kernel=3, padding=1,
                              layout=layout, dtype="u8s8")
    x, qw = _extreme(spec, x_value, w_value, x_zero)
    y = convbench.get_algorithm("naive").prepare(spec, qw)(x)
    ref = reference(spec, x, qw)
    assert max_abs_err_lsb(y, ref) <= 1 and len(np.unique(ref)) > 1  # the border differs from the centre


def test_naive_names_its_8bit_kernel():
    algo = convbench.get_algorithm("naive")
    assert "u8s8" in algo.dtypes
    assert algo.implementation(convbench.ConvSpec(1, 2, 2, 3, 3, 3, dtype="u8s8")) == "numba:direct-u8s8"
    assert algo.implementation(convbench.ConvSpec(1, 2, 2, 3, 3, 3)) == "numba:direct"


def test_u8_start_takes_the_zero_point_times_the_weight_sum_off_the_bias():
    w = np.array([[[[1, -2]]], [[[127, 127]]]], np.int8)
    assert u8_start(w, np.array([10, -5], np.int32), 3).tolist() == [10 - 3 * -1, -5 - 3 * 254]


def test_the_u8_kernel_caller_refuses_arrays_that_do_not_fit_together():
    spec = convbench.ConvSpec(batch=1, in_channels=4, out_channels=6, height=5, width=5, kernel=3, layout="nhwc",
                              dtype="u8s8")
    x, qw = spec.random_inputs(0)
    w = pack_direct(qw.weight, 1, np.int8)
    acc0, mult = u8_start(qw.weight, qw.bias, qw.x_zero), qw.multiplier()
    out = np.empty((1, 3, 3, 6), np.uint8)
    direct_u8_nhwc(x, w, qw.x_zero, acc0, mult, qw.y_zero, 1, 1, 1, 1, 0, 0, out)
    assert np.array_equal(out, reference(spec, x, qw))
    for bad in (dict(out=np.empty((1, 3, 3, 5), np.uint8)), dict(mult=mult[:5]), dict(x=x[..., :3].copy()),
                dict(acc0=acc0.astype(np.int64)), dict(out=np.empty((1, 3, 3, 6), np.float32))):
        args = dict(x=x, w=w, x_zero=qw.x_zero, acc0=acc0, mult=mult, y_zero=qw.y_zero, sh=1, sw=1, dh=1, dw=1,
                    top=0, left=0, out=out)
        with pytest.raises(ValueError, match="do not fit together"):
            direct_u8_nhwc(**{**args, **bad})
