"""The float64 reference is checked against independent computations."""

import numpy as np
import pytest
from scipy.signal import correlate2d

from convbench import ConvSpec, reference, relative_error
from convbench.reference import conv_error


def test_single_channel_matches_scipy_correlate2d():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 7, 9))
    w = rng.standard_normal((1, 1, 3, 4))
    spec = ConvSpec(batch=1, in_channels=1, out_channels=1, height=7, width=9, kernel=(3, 4),
                    padding=(1, 2, 0, 3), dtype="float64")
    xp = np.pad(x[0, 0], ((1, 2), (0, 3)))
    expected = correlate2d(xp, w[0, 0], mode="valid")
    np.testing.assert_allclose(reference(spec, x, w)[0, 0], expected, rtol=1e-12)


def test_hand_computed_stride_dilation_example():
    x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
    w = np.zeros((1, 1, 2, 2))
    w[0, 0, 0, 0] = 1.0
    w[0, 0, 1, 1] = 10.0
    spec = ConvSpec(batch=1, in_channels=1, out_channels=1, height=5, width=5, kernel=2,
                    stride=2, dilation=2, dtype="float64")
    # output (i, j) = x[2i, 2j] + 10 * x[2i + 2, 2j + 2]; x[a, b] = 5a + b
    y = reference(spec, x, w)[0, 0]
    assert y.shape == (2, 2)
    assert y.tolist() == [[0 + 10 * 12, 2 + 10 * 14], [10 + 10 * 22, 12 + 10 * 24]]


def test_groups_are_independent_convolutions():
    rng = np.random.default_rng(1)
    spec = ConvSpec(batch=2, in_channels=4, out_channels=6, height=5, width=6, kernel=3,
                    padding=1, groups=2, dtype="float64")
    x, w = rng.standard_normal(spec.input_shape), rng.standard_normal(spec.weight_shape)
    y = reference(spec, x, w)
    half = spec.replace(in_channels=2, out_channels=3, groups=1)
    np.testing.assert_allclose(y[:, :3], reference(half, x[:, :2], w[:3]), rtol=1e-12)
    np.testing.assert_allclose(y[:, 3:], reference(half, x[:, 2:], w[3:]), rtol=1e-12)


def test_layouts_agree():
    rng = np.random.default_rng(2)
    nchw = ConvSpec(batch=2, in_channels=3, out_channels=4, height=6, width=5, kernel=3, stride=2,
                    padding=(1, 0, 2, 1))
    nhwc = nchw.replace(layout="nhwc")
    x, w = rng.standard_normal(nchw.input_shape), rng.standard_normal(nchw.weight_shape)
    y1 = reference(nchw, x, w)
    y2 = reference(nhwc, x.transpose(0, 2, 3, 1), w)
    np.testing.assert_allclose(y1.transpose(0, 2, 3, 1), y2, rtol=1e-12)


def test_relative_error_measure():
    ref = np.array([1.0, -4.0, 2.0])
    assert relative_error(np.array([1.0, -4.0, 2.5]), ref) == pytest.approx(0.5 / 4.0)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([np.nan, 0, 0]), ref) == float("inf")
    with pytest.raises(ValueError, match="shape"):
        relative_error(np.zeros(2), ref)


def test_error_floor_keeps_an_all_padding_output_meaningful():
    spec = ConvSpec(batch=1, in_channels=1, out_channels=1, height=1, width=1, kernel=(2, 1),
                    padding=(1, 1, 0, 0), dilation=(2, 1), dtype="float64")
    x, w = np.full(spec.input_shape, 0.5), np.full(spec.weight_shape, 2.0)
    assert not reference(spec, x, w).any()  # both taps read padding
    residue = np.full(spec.output_shape, 1e-12)
    assert conv_error(spec, residue, x, w) == pytest.approx(1e-12)
    assert conv_error(spec, np.full(spec.output_shape, 0.1), x, w) == pytest.approx(0.1)
