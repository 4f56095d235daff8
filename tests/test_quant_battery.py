"""The 8-bit conformance battery (issue 24): its corners are what they say (zero points at both
ends, tiny and huge multipliers, saturation both ways, exact rounding ties), and it fails the
mistakes an 8-bit kernel makes: padding with 0 instead of the zero point, wrapping instead of
saturating, forgetting the output zero point, rounding off by more than one LSB."""

from __future__ import annotations

import numpy as np
import pytest

import convbench
from convbench.quant import QuantizedWeight, requantize_reference
from convbench.reference import _accumulate, reference
from convbench.testing import (
    CORNER_SHAPES, QUANT_CORNERS, BatterySpec, check_algorithm, check_refuses_wrong_dtype,
    check_refuses_wrong_weight_shape, conformance_cases, conformance_specs, quantized_specs,
)

SHAPES = dict(conformance_cases())


def _spec(corner: str, shape: str = "3x3-p1", layout: str = "nhwc") -> BatterySpec:
    return BatterySpec(**SHAPES[shape], layout=layout, dtype="u8s8", quant=corner)


def _acc(spec, x, qw) -> np.ndarray:
    """int64 NCHW accumulators, bias included (the reference's own loops)."""
    return _accumulate(spec, x.astype(np.int64) - qw.x_zero, qw.weight.astype(np.int64), 0) + \
        qw.bias.astype(np.int64).reshape(1, -1, 1, 1)


def _multiplier(qw) -> np.ndarray:
    return (np.float64(qw.x_scale) * qw.w_scale.astype(np.float64) / np.float64(qw.y_scale)).reshape(1, -1, 1, 1)


# -- the corners -------------------------------------------------------------------------


def test_the_battery_holds_every_shape_drawn_and_every_corner_on_the_corner_shapes():
    specs = dict(quantized_specs())
    assert len(specs) == 2 * len(SHAPES) + 2 * (len(QUANT_CORNERS) - 1) * len(CORNER_SHAPES)
    assert all(s.dtype == "u8s8" and isinstance(s, BatterySpec) for s in specs.values())
    assert specs["depthwise-zp255-nchw-u8s8"].quant == "zp255"
    assert [i for i, _ in conformance_specs(dtypes=["float32"])] == [f"{c}-{lo}-float32" for c in SHAPES
                                                                     for lo in ("nchw", "nhwc")]
    with pytest.raises(ValueError, match="quant must be one of"):
        _spec("zp7")


@pytest.mark.parametrize("z", [0, 128, 255])
def test_zero_point_corners_set_both_zero_points_and_padding_reads_them(z):
    spec = _spec(f"zp{z}")
    x, qw = spec.random_inputs(1)
    assert qw.x_zero == qw.y_zero == z
    y = reference(spec, x, qw)
    assert (y == z).mean() < 0.75  # half may saturate at a zero point of 0 or 255, not all
    ref_nchw = y.transpose(0, 3, 1, 2)
    # padding taps read the zero point: zero padding (the pixel value 0) is the same answer only when it is 0
    assert np.array_equal(_pads_with_zero(spec, x, qw), ref_nchw) == (z == 0)


def test_scale_corners_make_the_multiplier_tiny_or_huge():
    drawn = _spec("drawn").random_inputs(2)[1].multiplier()
    tiny_spec, huge_spec = _spec("tiny-scale"), _spec("huge-scale")
    tiny, huge = tiny_spec.random_inputs(2), huge_spec.random_inputs(2)
    assert np.allclose(tiny[1].multiplier() * 2**16, drawn, rtol=1e-6)
    assert np.allclose(huge[1].multiplier() / 2**12, drawn, rtol=1e-6)
    y_tiny = reference(tiny_spec, *tiny).astype(int)
    assert np.abs(y_tiny - tiny[1].y_zero).max() <= 2
    y_huge = reference(huge_spec, *huge)
    assert ((y_huge == 0) | (y_huge == 255)).mean() > 0.9


def test_the_saturated_corner_pins_even_channels_at_255_and_odd_ones_at_0():
    spec = _spec("saturated", "groups2", "nchw")
    y = reference(spec, *spec.random_inputs(3))
    assert (y[:, 0::2] == 255).all() and (y[:, 1::2] == 0).all()


@pytest.mark.parametrize("shape", CORNER_SHAPES)
def test_the_ties_corner_lands_exactly_on_rounding_ties_in_float32_too(shape):
    spec = _spec("ties", shape)
    x, qw = spec.random_inputs(4)
    scaled = _acc(spec, x, qw) * _multiplier(qw)
    ties = (scaled - np.floor(scaled)) == 0.5
    assert ties.mean() > 0.02, ties.mean()
    assert np.array_equal(qw.multiplier().astype(np.float64), _multiplier(qw).ravel())  # 2^-k: exact
    y = reference(spec, x, qw)
    nchw = y if spec.layout == "nchw" else y.transpose(0, 3, 1, 2)
    assert np.array_equal(nchw[ties] % 2 == (qw.y_zero % 2), np.ones(ties.sum(), bool))  # to even (y_zero even)


# -- the battery fails the usual 8-bit mistakes ----------------------------------------


def _mutant(name: str, requantize):
    class Mutant(convbench.Algorithm):
        dtypes = ("u8s8",)

        def prepare(self, spec, qw):
            def call(x):
                y = requantize(spec, x, qw)
                return np.ascontiguousarray(y.transpose(0, 2, 3, 1) if spec.layout == "nhwc" else y)
            return call

    Mutant.name = name
    return Mutant()


def _pads_with_zero(spec, x, qw):
    shifted = x.astype(np.int64) - qw.x_zero
    nchw = shifted if spec.layout == "nchw" else shifted.transpose(0, 3, 1, 2)
    t, b, l, r = spec.padding
    padded = np.pad(nchw, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=-qw.x_zero)  # pixel value 0
    inner = spec.replace(height=padded.shape[2], width=padded.shape[3], padding=0, layout="nchw")
    acc = _accumulate(inner, padded, qw.weight.astype(np.int64), 0) + qw.bias.astype(np.int64).reshape(1, -1, 1, 1)
    return requantize_reference(acc, qw, 1)


def _wraps(spec, x, qw):
    y = np.rint(_acc(spec, x, qw) * _multiplier(qw)) + qw.y_zero
    return (y.astype(np.int64) % 256).astype(np.uint8)


def _no_output_zero_point(spec, x, qw):
    return np.clip(np.rint(_acc(spec, x, qw) * _multiplier(qw)), 0, 255).astype(np.uint8)


def _truncates(spec, x, qw):
    return np.clip(np.trunc(_acc(spec, x, qw) * _multiplier(qw) * 0.98) + qw.y_zero, 0, 255).astype(np.uint8)


def _half_away(spec, x, qw):
    """Rounds ties away from zero: one LSB off on ties only, which the contract allows."""
    v = _acc(spec, x, qw) * _multiplier(qw)
    return np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + qw.y_zero, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("mistake, caught_by", [
    (_pads_with_zero, "zp255"), (_wraps, "saturated"), (_no_output_zero_point, "zp128"), (_truncates, "drawn"),
])
def test_the_battery_fails_an_8bit_mistake(mistake, caught_by):
    algo = _mutant(f"t-mutant-{mistake.__name__}", mistake)
    results = check_algorithm(algo, quantized_specs())
    failed = [r for r in results if r.status == "failed"]
    assert failed and all("LSB" in r.message for r in failed)
    corners = {next((c for c in QUANT_CORNERS if f"-{c}-" in r.spec_id), "drawn") for r in failed}
    assert caught_by in corners, corners


def test_rounding_ties_away_from_zero_is_within_the_one_lsb_allowed():
    algo = _mutant("t-mutant-half-away", _half_away)
    results = check_algorithm(algo, [(i, s) for i, s in quantized_specs() if "-ties-" in i])
    assert results and all(r.status == "passed" for r in results), [r for r in results if r.status != "passed"]
    assert max(r.error for r in results if r.error is not None) == 1


def test_the_interface_checks_of_the_8bit_battery_refuse_floats_and_a_wrong_weight_shape():
    spec = _spec("drawn")
    naive = convbench.get_algorithm("naive")
    check_refuses_wrong_dtype(naive, spec)
    check_refuses_wrong_weight_shape(naive, spec)

    class Converts(convbench.Algorithm):
        name = "t-converts-weights"
        dtypes = ("u8s8",)

        def prepare(self, spec, qw):
            return lambda x: reference(spec, x, qw)

    # the guard refuses for every algorithm alike, so the checks pass: a float weight never reaches prepare
    check_refuses_wrong_dtype(Converts(), spec)
    assert isinstance(spec.random_inputs(0)[1], QuantizedWeight)
