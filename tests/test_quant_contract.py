"""The 8-bit contract (issue 24): ConvSpec's ``u8s8`` dtype, the seeded draws, the exact
integer reference, the guard's checks of a QuantizedWeight, and the one place that
decides whether an algorithm can run a spec (its ``dtypes``, then its ``supports``)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import convbench
from extras import needs_extra
from convbench.algorithm import unsupported_reason
from convbench.quant import LSB_TOLERANCE, QuantizedWeight, max_abs_err_lsb
from convbench.reference import conv_error, reference, reference_u8
from convbench.spec import DTYPES, SpecFieldError


def _spec(**kw):
    base = dict(batch=1, in_channels=4, out_channels=6, height=6, width=5, kernel=3, padding=1, dtype="u8s8")
    return convbench.ConvSpec(**{**base, **kw})


# -- ConvSpec -------------------------------------------------------------------------


def test_u8s8_is_a_convspec_dtype_with_uint8_data_and_itemsize_one():
    spec = _spec(layout="nhwc")
    assert "u8s8" in DTYPES and spec.dtype == "u8s8" and spec.is_quantized
    assert spec.np_dtype == np.uint8 and spec.itemsize == 1
    assert spec.input_bytes == int(np.prod(spec.input_shape))
    assert spec.describe().endswith("nhwc u8s8")
    assert not _spec(dtype="float32").is_quantized and _spec(dtype="float32").itemsize == 4


def test_u8s8_is_accepted_in_any_case_and_a_bad_dtype_lists_it():
    assert _spec(dtype="U8S8").dtype == "u8s8"
    with pytest.raises(SpecFieldError) as info:
        _spec(dtype="int8")
    assert "'u8s8'" in str(info.value) and "'float32'" in str(info.value)


def test_random_inputs_of_a_u8s8_spec_are_uint8_and_a_quantized_weight_from_the_seed():
    spec = _spec(groups=2)
    x, qw = spec.random_inputs(5)
    assert x.dtype == np.uint8 and x.shape == spec.input_shape
    assert isinstance(qw, QuantizedWeight) and qw.weight.dtype == np.int8 and qw.shape == spec.weight_shape
    assert qw.w_scale.dtype == np.float32 and qw.bias.dtype == np.int32 and qw.w_scale.shape == (6,)
    x2, qw2 = spec.random_inputs(5)
    assert np.array_equal(x, x2) and np.array_equal(qw.weight, qw2.weight) and qw.describe() == qw2.describe()
    x3, qw3 = spec.random_inputs(6)
    assert not np.array_equal(x, x3) and qw.describe() != qw3.describe()


def test_quantized_weight_copy_is_deep():
    _, qw = _spec().random_inputs(0)
    c = qw.copy()
    c.weight[...] = 0
    assert qw.weight.any() and c.describe() == qw.describe()


# -- the reference ---------------------------------------------------------------------


def _brute_force(spec, x, qw):
    """The QLinearConv definition, element by element in Python integers."""
    xn = x if spec.layout == "nchw" else x.transpose(0, 3, 1, 2)
    n, c, h, w = xn.shape
    cg, kg = spec.channels_per_group, spec.out_channels_per_group
    out = np.zeros((n, spec.out_channels, spec.output_height, spec.output_width), np.uint8)
    for b, k, i, j in itertools.product(range(n), range(spec.out_channels), range(spec.output_height),
                                        range(spec.output_width)):
        acc = int(qw.bias[k])
        for cc, r, s in itertools.product(range(cg), range(spec.kernel_h), range(spec.kernel_w)):
            ih = i * spec.stride_h + r * spec.dilation_h - spec.pad_top
            iw = j * spec.stride_w + s * spec.dilation_w - spec.pad_left
            inside = 0 <= ih < h and 0 <= iw < w
            v = int(xn[b, (k // kg) * cg + cc, ih, iw]) if inside else qw.x_zero  # padding is the zero point
            acc += (v - qw.x_zero) * int(qw.weight[k, cc, r, s])
        m = float(qw.x_scale) * float(qw.w_scale[k]) / float(qw.y_scale)
        out[b, k, i, j] = min(255, max(0, int(np.rint(acc * m)) + qw.y_zero))
    return out if spec.layout == "nchw" else out.transpose(0, 2, 3, 1)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("kw", [
    dict(), dict(stride=2, padding=(0, 2, 1, 0)), dict(dilation=2, padding=2, height=7, width=7),
    dict(groups=2), dict(in_channels=4, out_channels=4, groups=4), dict(batch=2, kernel=(1, 3), stride=(2, 1)),
], ids=["3x3-p1", "s2-asym", "dil2", "groups2", "depthwise", "batch2-1x3"])
def test_u8_reference_is_the_qlinearconv_definition(layout, kw):
    spec = _spec(layout=layout, **kw)
    x, qw = spec.random_inputs(11)
    ref = reference(spec, x, qw)
    assert ref.dtype == np.uint8 and ref.shape == spec.output_shape
    assert np.array_equal(ref, _brute_force(spec, x, qw))


def test_the_draws_use_the_whole_u8_range_and_saturate_at_both_ends():
    spec = _spec(in_channels=16, out_channels=16, height=10, width=10)
    both = 0
    for seed in range(8):
        y = reference(spec, *spec.random_inputs(seed))
        assert len(np.unique(y)) >= 180, seed
        both += bool((y == 0).any() and (y == 255).any())
    assert both >= 6  # a channel's bias can shift it all one way: not every seed hits both ends


def _unit_weight(spec, x_zero, y_zero, bias=0, w_value=1):
    k = spec.out_channels
    return QuantizedWeight(weight=np.full(spec.weight_shape, w_value, np.int8), w_scale=np.ones(k, np.float32),
                           bias=np.full(k, bias, np.int32), x_scale=1.0, x_zero=x_zero, y_scale=1.0, y_zero=y_zero)


def test_padding_reads_the_input_zero_point_not_zero():
    spec = _spec(in_channels=1, out_channels=1, height=1, width=1, kernel=3, padding=1)
    qw = _unit_weight(spec, x_zero=200, y_zero=10)
    x = np.full(spec.input_shape, 203, np.uint8)
    # 8 padding taps contribute (200 - 200) * 1, the centre (203 - 200): y = 3 + 10
    assert reference(spec, x, qw).item() == 13


def test_requantization_rounds_ties_to_even_and_saturates():
    spec = _spec(in_channels=1, out_channels=1, height=1, width=4, kernel=1, padding=0)
    qw = QuantizedWeight(weight=np.ones(spec.weight_shape, np.int8), w_scale=np.ones(1, np.float32),
                         bias=np.zeros(1, np.int32), x_scale=0.5, x_zero=0, y_scale=1.0, y_zero=0)
    x = np.array([[[[5, 7, 255, 3]]]], np.uint8)  # acc * 0.5 = 2.5, 3.5, 127.5, 1.5
    assert reference(spec, x, qw).ravel().tolist() == [2, 4, 128, 2]
    low = QuantizedWeight(**{**qw.__dict__, "bias": np.array([-1000], np.int32)})
    high = QuantizedWeight(**{**qw.__dict__, "bias": np.array([1000], np.int32)})
    assert reference(spec, x, low).ravel().tolist() == [0] * 4
    assert reference(spec, x, high).ravel().tolist() == [255] * 4


def test_reference_u8_refuses_a_float_weight_and_a_float_input():
    spec = _spec()
    x, qw = spec.random_inputs(0)
    with pytest.raises(TypeError, match="QuantizedWeight"):
        reference(spec, x, qw.weight)
    with pytest.raises(ValueError, match="uint8"):
        reference_u8(spec, x.astype(np.float32), qw)


def test_conv_error_of_a_u8s8_answer_is_in_output_units():
    spec = _spec()
    x, qw = spec.random_inputs(2)
    ref = reference(spec, x, qw)
    y = ref.copy()
    assert conv_error(spec, y, x, qw) == 0
    y.flat[3] = y.flat[3] + 1 if y.flat[3] < 255 else 254
    assert conv_error(spec, y, x, qw) == 1 == max_abs_err_lsb(y, ref) == LSB_TOLERANCE


@needs_extra("peers", "torch")
def test_the_float_reference_is_unchanged():
    spec = _spec(dtype="float64", groups=2, stride=2)
    x, w = spec.random_inputs(0)
    import torch

    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=1, groups=2)
    assert np.allclose(reference(spec, x, w), want.numpy(), rtol=1e-12, atol=1e-12)


# -- which algorithm runs which dtype --------------------------------------------------


class _FloatOnly(convbench.Algorithm):
    name = "quant-test-float-only"
    asked: list = []

    def supports(self, spec):
        self.asked.append(spec.dtype)
        return None

    def prepare(self, spec, weight):
        return lambda x: x


class _Both(_FloatOnly):
    name = "quant-test-both"
    dtypes = ("float32", "u8s8")

    def prepare(self, spec, weight):
        self.got = weight
        return lambda x: np.zeros(spec.output_shape, spec.np_dtype)


def test_an_algorithm_runs_float32_and_float64_by_default_and_says_so_for_u8s8():
    algo = _FloatOnly()
    assert algo.dtypes == ("float32", "float64")
    assert unsupported_reason(algo, _spec()) == "quant-test-float-only runs float32, float64 only"
    assert unsupported_reason(algo, _spec(dtype="float64")) is None


def test_supports_is_not_asked_about_a_dtype_the_algorithm_does_not_list():
    algo = _FloatOnly()
    algo.asked.clear()
    unsupported_reason(algo, _spec())
    assert algo.asked == []
    assert "float64 only" in unsupported_reason(convbench.get_algorithm("winograd"), _spec())


def test_prepare_refuses_a_dtype_the_algorithm_does_not_list():
    spec = _spec()
    _, qw = spec.random_inputs(0)
    with pytest.raises(ValueError, match="runs float32, float64 only"):
        _FloatOnly().prepare(spec, qw)
    with pytest.raises(ValueError, match="runs float32, u8s8 only"):
        _Both().prepare(spec.replace(dtype="float64"), np.zeros(spec.weight_shape))


# -- the guard ------------------------------------------------------------------------


def _with(qw, **changes):
    return QuantizedWeight(**{**qw.__dict__, **changes})


def test_the_guard_hands_a_checked_quantized_weight_and_checks_the_u8_input():
    spec = _spec()
    x, qw = spec.random_inputs(0)
    algo = _Both()
    call = algo.prepare(spec, qw)
    assert algo.got is qw
    assert call(x).dtype == np.uint8
    with pytest.raises(TypeError, match=r"must be uint8, a u8s8 spec's activations; got int8"):
        call(x.astype(np.int8))
    with pytest.raises(TypeError, match=r"must be uint8.*got float32"):
        call(x.astype(np.float32))


def test_the_guard_copies_strided_quantized_arrays_to_contiguous_ones():
    spec = _spec()
    _, qw = spec.random_inputs(0)
    strided = _with(qw, w_scale=np.repeat(qw.w_scale, 2)[::2])
    algo = _Both()
    algo.prepare(spec, strided)
    assert algo.got.w_scale.flags.c_contiguous and np.array_equal(algo.got.w_scale, qw.w_scale)


@pytest.mark.parametrize("change, kind, words", [
    (lambda qw, s: qw.weight, TypeError, ["QuantizedWeight", "int8", "(6, 4, 3, 3)"]),
    (lambda qw, s: _with(qw, weight=qw.weight.astype(np.float32)), TypeError, ["weight", "int8", "float32"]),
    (lambda qw, s: _with(qw, weight=qw.weight[:, :3].copy()), ValueError, ["weight", "(6, 4, 3, 3)", "(6, 3, 3, 3)"]),
    (lambda qw, s: _with(qw, w_scale=qw.w_scale.astype(np.float64)), TypeError, ["w_scale", "float32", "float64"]),
    (lambda qw, s: _with(qw, w_scale=qw.w_scale[:5].copy()), ValueError, ["w_scale", "(6,)", "(5,)"]),
    (lambda qw, s: _with(qw, w_scale=np.where(np.arange(6) == 2, 0, qw.w_scale).astype(np.float32)),
     ValueError, ["w_scale", "positive", "channel 2"]),
    (lambda qw, s: _with(qw, w_scale=np.full(6, np.nan, np.float32)), ValueError, ["w_scale", "finite"]),
    (lambda qw, s: _with(qw, bias=qw.bias.astype(np.int64)), TypeError, ["bias", "int32", "int64"]),
    (lambda qw, s: _with(qw, x_zero=256), ValueError, ["x_zero", "0..255", "256"]),
    (lambda qw, s: _with(qw, y_zero=-1), ValueError, ["y_zero", "0..255", "-1"]),
    (lambda qw, s: _with(qw, y_zero=3.0), ValueError, ["y_zero", "0..255"]),
    (lambda qw, s: _with(qw, x_scale=0.0), ValueError, ["x_scale", "positive finite"]),
    (lambda qw, s: _with(qw, y_scale=float("inf")), ValueError, ["y_scale", "positive finite"]),
], ids=["float-array", "float-weight", "weight-shape", "w_scale-dtype", "w_scale-shape", "w_scale-zero",
        "w_scale-nan", "bias-dtype", "x_zero-256", "y_zero-neg", "y_zero-float", "x_scale-zero", "y_scale-inf"])
def test_the_guard_refuses_a_bad_quantized_weight_naming_the_field(change, kind, words):
    spec = _spec()
    _, qw = spec.random_inputs(0)
    with pytest.raises(kind) as info:
        _Both().prepare(spec, change(qw, spec))
    assert all(w in str(info.value) for w in words), str(info.value)
    assert "quant-test-both" in str(info.value)


def test_registering_an_algorithm_with_an_unknown_dtype_names_the_known_ones():
    from convbench.registry import PluginError, register

    class Int4(_FloatOnly):
        name = "quant-test-int4"
        dtypes = ("float32", "int4")

    with pytest.raises(PluginError, match=r"'quant-test-int4' declares dtypes \('float32', 'int4'\).*'u8s8'"):
        register(Int4)
    assert "quant-test-int4" not in convbench.list_algorithms()
