"""Every registered algorithm passes the conformance battery, through the same
door a plugin uses (convbench.testing), on the fixed table of odd shapes, in every
dtype it declares (u8s8: the 8-bit battery's corners too, within 1 LSB of the exact reference)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convbench
from convbench.algorithm import unsupported_reason
from convbench.quant import max_abs_err_lsb
from convbench.reference import error_floor
from convbench.spec import FLOAT_DTYPES
from convbench.testing import QUANT_CORNERS, BatterySpec, conformance_specs, parametrize_conformance
from extras import needs_extra

BUILTINS = ["naive", "im2col", "gemm-direct", "winograd", "fft", "indirect"]
ALGORITHMS = convbench.list_algorithms()
#: the production peers (the 'peers' extra): registered only where their packages are installed
PEERS = [n for n in ALGORITHMS if convbench.get_algorithm(n).peer]
OURS = [n for n in ALGORITHMS if n not in PEERS]


def test_the_six_builtins_are_registered_under_their_names():
    assert set(BUILTINS) <= set(ALGORITHMS)


def test_unknown_algorithm_error_lists_known_names():
    with pytest.raises(KeyError) as info:
        convbench.get_algorithm("im2colz")
    assert "im2col" in str(info.value) and "winograd" in str(info.value)


@parametrize_conformance(*OURS)
def test_conformance(algorithm, spec, check):
    check(algorithm, spec)


@needs_extra("peers")
@parametrize_conformance(*PEERS, specs=conformance_specs(dtypes=FLOAT_DTYPES))
def test_conformance_of_the_peers(algorithm, spec, check):
    """The float battery; tests/test_quantized_peers.py runs the 8-bit one through the same door."""
    check(algorithm, spec)


def _winograd_can_run(spec):
    return spec.kernel == (3, 3) and spec.stride == (1, 1) and spec.dilation == (1, 1)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_rejects_nothing_it_should_support(name):
    algo = convbench.get_algorithm(name)
    for spec_id, spec in conformance_specs():
        should = spec.dtype in algo.dtypes and (_winograd_can_run(spec) if name == "winograd" else True)
        reason = unsupported_reason(algo, spec)
        # an algorithm that declares u8s8 may still refuse some 8-bit layers, with its reason
        if not (spec.is_quantized and should):
            assert (reason is None) == should, f"{name} on {spec_id}: unsupported_reason said {reason!r}"
        if reason is not None:
            assert isinstance(reason, str) and reason
            if spec.dtype not in algo.dtypes:
                assert reason == f"{name} runs {', '.join(algo.dtypes)} only"


def test_every_u8s8_algorithm_meets_the_8bit_battery_and_float_only_ones_are_left_out_of_it():
    from convbench.testing import check_algorithm, quantized_specs

    specs = quantized_specs(layouts=["nhwc"])[::9]
    assert {s.dtype for _, s in specs} == {"u8s8"}
    assert check_algorithm("winograd", specs) == []  # it does not declare u8s8: no case, not a pass
    results = check_algorithm("naive", specs)
    assert results and all(r.status == "passed" for r in results), [r for r in results if r.status != "passed"]
    assert {r.unit for r in results if r.error is not None} == {"LSB"}


@st.composite
def valid_specs(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, 5))
    depthwise = draw(st.booleans()) and groups > 1
    cout = groups * (draw(st.integers(1, 2)) if depthwise else draw(st.integers(1, 5)))
    if depthwise:
        cin = groups
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pad[0] - pad[1]), 12))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pad[2] - pad[3]), 12))
    return convbench.ConvSpec(
        batch=draw(st.integers(1, 3)), in_channels=cin, out_channels=cout, height=h, width=w,
        kernel=(kh, kw), stride=(sh, sw), padding=pad, dilation=(dh, dw), groups=groups,
        layout=draw(st.sampled_from(["nchw", "nhwc"])), dtype=draw(st.sampled_from(["float32", "float64"])),
    )


def _matches_reference(names, spec, seed):
    x, w = spec.random_inputs(seed)
    ref = convbench.reference(spec, x, w)
    floor = error_floor(x, w)
    for name in names:
        algo = convbench.get_algorithm(name)
        if unsupported_reason(algo, spec) is not None:
            continue
        y = algo.prepare(spec, w)(x)
        assert y.shape == spec.output_shape and y.dtype == spec.np_dtype, name
        err = max_abs_err_lsb(y, ref) if spec.is_quantized else convbench.relative_error(y, ref, floor)
        assert err <= algo.tolerance_for(spec.dtype), f"{name} on {spec.describe()}: error {err:.3g}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=valid_specs(), seed=st.integers(0, 2**16))
def test_fuzz_every_algorithm_matches_reference(spec, seed):
    _matches_reference(OURS, spec, seed)


#: The peers' fuzz draws the same examples every run: a library's wrong answer on a new
#: shape is a finding to characterise (torch_quantized.onednn_one_column_wrong), not a CI flake.
PEER_FUZZ = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@needs_extra("peers")
@PEER_FUZZ
@given(spec=valid_specs(), seed=st.integers(0, 2**16))
def test_fuzz_every_peer_matches_reference(spec, seed):
    _matches_reference(PEERS, spec, seed)


@st.composite
def valid_u8_specs(draw):
    """A u8s8 battery spec of any shape, with any corner of the quantization parameters."""
    spec = draw(valid_specs())
    fields = {f: getattr(spec, f) for f in ("batch", "in_channels", "out_channels", "height", "width", "kernel",
                                            "stride", "padding", "dilation", "groups", "layout")}
    return BatterySpec(**fields, dtype="u8s8", quant=draw(st.sampled_from(sorted(QUANT_CORNERS))))


#: The algorithms that declare u8s8 (the peers among them are fuzzed below, under their extra)
OURS_8BIT = [n for n in OURS if "u8s8" in convbench.get_algorithm(n).dtypes]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=valid_u8_specs(), seed=st.integers(0, 2**16))
def test_fuzz_every_u8s8_algorithm_is_within_one_lsb(spec, seed):
    assert "naive" in OURS_8BIT
    _matches_reference(OURS_8BIT, spec, seed)


@needs_extra("peers")
@settings(PEER_FUZZ, max_examples=30)
@given(spec=valid_u8_specs(), seed=st.integers(0, 2**16))
def test_fuzz_every_u8s8_peer_is_within_one_lsb(spec, seed):
    _matches_reference([n for n in PEERS if "u8s8" in convbench.get_algorithm(n).dtypes], spec, seed)


def test_torch_peer_is_registered_exactly_when_torch_is_installed():
    import importlib.util

    installed = importlib.util.find_spec("torch") is not None
    assert ("torch" in ALGORITHMS) == installed
