"""The phases of a call (convbench/phases.py): composition, validation, what adapt
and the guard do to a phased call, and the phases every built-in declares."""

from __future__ import annotations

import numpy as np
import pytest

import convbench
from convbench.layouts import adapt, convert
from convbench.phases import PHASES, PhasedCall, phased, run_steps, steps_of
from convbench.testing import check_phases_compose
from extras import needs_extra


def _double(x):
    return x * 2


def _inc(x):
    return x + 1


def _neg(x):
    return -x


@pytest.mark.parametrize("fns", [[_double], [_double, _inc], [_double, _inc, _neg],
                                 [_double, _inc, _neg, _inc, _double]])
def test_the_composition_is_the_call(fns):
    names = ["pack", "transform_in", "gemm", "transform_out", "other"][: len(fns)]
    call = phased(*zip(names, fns))
    x = np.arange(6.0)
    expected = x
    for fn in fns:
        expected = fn(expected)
    assert np.array_equal(call(x), expected)
    values = run_steps(call, x)
    assert len(values) == len(fns) + 1 and values[0] is x
    assert np.array_equal(values[-1], expected)
    assert call.phases == tuple(names) and call.steps == tuple(zip(names, fns))
    assert repr(call) == f"<phased call: {' -> '.join(names)}>"


def test_a_plain_callable_is_one_other_step():
    assert steps_of(_double) == (("other", _double),)
    assert [v.tolist() for v in run_steps(_double, np.ones(2))] == [[1.0, 1.0], [2.0, 2.0]]
    assert PHASES == ("pack", "transform_in", "gemm", "transform_out", "other")


def test_validation_errors_name_the_step():
    with pytest.raises(ValueError, match="at least one step"):
        PhasedCall([])
    with pytest.raises(ValueError, match=r"step 1 of a phased call has phase 'gemmm'.*pack, transform_in"):
        phased(("pack", _double), ("gemmm", _inc))
    with pytest.raises(TypeError, match=r"step 1 \(gemm\) of a phased call is int, not callable"):
        phased(("pack", _double), ("gemm", 3))
    with pytest.raises(TypeError, match=r"step 0 of a phased call must be a \(phase, function\) pair"):
        PhasedCall([_double])


def test_adapt_adds_pack_and_transform_out():
    inner = phased(("gemm", lambda x: x * 2))
    assert adapt(inner, "nhwc", "nhwc") is inner
    outer = adapt(inner, "nchw", "nhwc")
    assert isinstance(outer, PhasedCall) and outer.phases == ("pack", "gemm", "transform_out")
    x = np.arange(24.0).reshape(1, 2, 3, 4)  # NCHW
    values = run_steps(outer, x)
    assert values[1].shape == (1, 3, 4, 2) and values[1].flags.c_contiguous  # NHWC
    assert np.array_equal(outer(x), x * 2) and np.array_equal(values[-1], x * 2)
    assert np.array_equal(convert(values[2], "nhwc", "nchw"), x * 2)


SPEC = dict(batch=1, in_channels=4, out_channels=4, height=6, width=6, kernel=3, padding=1)


class _Phased(convbench.Algorithm):
    """Not registered: a two-step call for the guard test."""

    name = "test-phased"

    def prepare(self, spec, weight):
        return phased(("pack", lambda x: x.copy()), ("other", lambda x: x[:, :, 1:-1, 1:-1].copy()))


def test_the_guard_keeps_the_steps_and_refuses_bad_input():
    spec = convbench.ConvSpec(**{**SPEC, "padding": 0, "out_channels": 4}, layout="nchw")
    x, w = spec.random_inputs(0)
    call = _Phased().prepare(spec, w)
    assert isinstance(call, PhasedCall) and call.phases == ("pack", "other")
    assert np.array_equal(run_steps(call, x)[-1], call(x))
    with pytest.raises(ValueError, match=r"'test-phased'.*shape"):
        call(np.zeros((1, 4, 6, 5), spec.dtype))
    with pytest.raises(TypeError, match="float32"):
        call(x.astype("float64"))
    with pytest.raises(ValueError, match="contiguous"):
        call(np.asfortranarray(x))
    # the check sits in front of the first step: a step run alone is unguarded
    assert call.steps[1][1](np.zeros((1, 1, 3, 3))).shape == (1, 1, 1, 1)


def test_a_guarded_builtin_keeps_its_steps_and_refuses_bad_input():
    spec = convbench.ConvSpec(**SPEC, layout="nchw")
    x, w = spec.random_inputs(0)
    call = convbench.get_algorithm("im2col-numba").prepare(spec, w)
    assert call.phases == ("pack", "pack", "gemm", "transform_out")
    with pytest.raises(ValueError, match=r"'im2col-numba'.*\(1, 4, 6, 6\)"):
        call(x[:, :, :5])
    with pytest.raises(TypeError, match="float32"):
        call(x.astype("float64"))


T3 = ("transform_in", "gemm", "transform_out")
#: algorithm -> layer kind -> (phases on NHWC, phases on NCHW)
EXPECTED = {
    "naive": {"3x3": (("gemm",), ("pack", "gemm", "transform_out"))},
    "im2col": {"3x3": (("pack", "gemm"), ("pack", "gemm")),
               "1x1": (("gemm",), ("gemm",)),
               "depthwise": (("pack", "gemm"), ("pack", "gemm"))},
    "im2col-numba": {"3x3": (("pack", "gemm"), ("pack", "pack", "gemm", "transform_out")),
                     "1x1": (("gemm",), ("pack", "gemm", "transform_out"))},
    "indirect": {"3x3": (("gemm",), ("pack", "gemm", "transform_out")),
                 "depthwise": (("gemm",), ("pack", "gemm", "transform_out"))},
    "gemm-direct": {"3x3": (("pack", "gemm"), ("pack", "pack", "gemm", "transform_out")),
                    "1x1": (("gemm",), ("pack", "gemm", "transform_out"))},
    "fft": {"3x3": (("pack", *T3, "transform_out"), T3),
            "depthwise": (("pack", *T3, "transform_out"), T3)},
    **{name: {"3x3": (T3, ("pack", *T3, "transform_out")),
              "depthwise": (T3, ("pack", *T3, "transform_out"))}
       for name in ("winograd", "winograd-f4", "winograd-f6")},
}
KINDS = {"3x3": SPEC, "1x1": {**SPEC, "kernel": 1, "padding": 0}, "depthwise": {**SPEC, "groups": 4}}


@pytest.mark.parametrize("name, kind", [(n, k) for n, kinds in EXPECTED.items() for k in kinds])
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_each_builtin_declares_its_phases(name, kind, layout):
    spec = convbench.ConvSpec(**KINDS[kind], layout=layout)
    call = convbench.get_algorithm(name).prepare(spec, spec.random_inputs(0)[1])
    assert isinstance(call, PhasedCall)
    assert call.phases == EXPECTED[name][kind][layout == "nchw"]


@needs_extra("peers")
@pytest.mark.parametrize("name", ["torch", "onednn", "onnxruntime"])
def test_peers_are_one_other_step(name):
    spec = convbench.ConvSpec(**SPEC, layout="nchw")
    call = convbench.get_algorithm(name).prepare(spec, spec.random_inputs(0)[1])
    assert not isinstance(call, PhasedCall) and [p for p, _ in steps_of(call)] == ["other"]


#: paths the battery's interface sample (every 7th spec) does not reach: grouped
#: NHWC (im2col's group interleave), channel multipliers, batch > 1
ODD_PATHS = [dict(SPEC, in_channels=6, out_channels=10, groups=2),
             dict(SPEC, in_channels=3, out_channels=6, groups=3),
             dict(SPEC, batch=2, in_channels=3, out_channels=5, height=5, width=7)]


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_steps_compose_on_the_odd_paths(name, layout):
    for kwargs in ODD_PATHS:
        check_phases_compose(convbench.get_algorithm(name), convbench.ConvSpec(**kwargs, layout=layout))
