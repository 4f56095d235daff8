"""The input guard (issue 18): every algorithm refuses what it cannot compute,
at the caller's line, with an error that names the spec, the expected and the
received shape or dtype; nothing is converted silently."""

from __future__ import annotations

import traceback
from pathlib import Path

import numpy as np
import pytest

import convbench
import convbench.guard
from convbench.algorithm import unsupported_reason
from convbench.registry import PluginError, load_plugin, unregister
from convbench.scaffold import write_plugin_skeleton
from convbench.testing import (
    check_refuses_strided_input,
    check_refuses_wrong_dtype,
    check_refuses_wrong_input_shape,
    check_refuses_wrong_weight_shape,
)
from extras import needs_extra

GUARD_FILE = Path(convbench.guard.__file__).resolve()
PHASES_FILE = Path(convbench.phases.__file__).resolve()  # a phased call's dispatch to its steps
# the example: height 9, an input of height 8 was accepted
SPECS = [
    convbench.ConvSpec(batch=2, in_channels=7, out_channels=5, height=9, width=11, kernel=3,
                       padding=1, layout=layout)
    for layout in ("nhwc", "nchw")
]


@pytest.fixture(scope="module")
def skeleton(tmp_path_factory) -> str:
    """A plugin exactly as ``convbench new-plugin`` writes it, registered."""
    path = write_plugin_skeleton("guard-skeleton", tmp_path_factory.mktemp("plugin") / "skel.py")
    load_plugin(str(path))
    yield "guard-skeleton"
    unregister("guard-skeleton")


def _names(skeleton: str, spec: convbench.ConvSpec) -> list[str]:
    """Every registered algorithm that runs ``spec`` (built-ins, peers where installed, plugins, the
    skeleton); one that refuses it (a peer without NHWC) is refused at prepare, tested below."""
    names = [n for n in convbench.list_algorithms() if unsupported_reason(convbench.get_algorithm(n), spec) is None]
    assert skeleton in names and "indirect" in names
    return names


def _raised_here(exc_info: pytest.ExceptionInfo) -> None:
    """The error comes from the guard, called straight from this test's line:
    no frame of numpy, numba, torch or the algorithm lies between (a phased
    call's own dispatch to its first, guarded, step may)."""
    frames = traceback.extract_tb(exc_info.tb)
    assert frames[0].filename == __file__
    inner = {Path(f.filename).resolve() for f in frames[1:]}
    assert GUARD_FILE in inner and inner <= {GUARD_FILE, PHASES_FILE}, \
        [f"{f.filename}:{f.lineno}" for f in frames]
    assert Path(frames[-1].filename).resolve() == GUARD_FILE


def _prepared(name: str, spec: convbench.ConvSpec):
    x, w = spec.random_inputs(0)
    return x, w, convbench.get_algorithm(name).prepare(spec, w)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.layout)
def test_every_algorithm_refuses_an_input_one_row_short(skeleton, spec):
    for name in _names(skeleton, spec):
        x, _, call = _prepared(name, spec)
        short = np.ascontiguousarray(x[:, :, :8] if spec.layout == "nchw" else x[:, :8])
        with pytest.raises(ValueError) as info:
            call(short)
        _raised_here(info)
        message = str(info.value)
        assert name in message and spec.describe() in message, message
        assert str(spec.input_shape) in message and str(short.shape) in message, message


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.layout)
def test_every_algorithm_refuses_a_weight_with_one_channel_too_few(skeleton, spec):
    _, w = spec.random_inputs(0)
    bad = np.ascontiguousarray(w[:, :-1])
    for name in _names(skeleton, spec):
        with pytest.raises(ValueError) as info:
            convbench.get_algorithm(name).prepare(spec, bad)
        _raised_here(info)
        message = str(info.value)
        assert name in message and str(spec.weight_shape) in message and str(bad.shape) in message


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.layout)
def test_every_algorithm_refuses_float64_for_a_float32_spec_without_converting(skeleton, spec):
    for name in _names(skeleton, spec):
        x, w, call = _prepared(name, spec)
        with pytest.raises(TypeError) as info:
            call(x.astype(np.float64))
        _raised_here(info)
        assert "float32" in str(info.value) and "float64" in str(info.value)
        with pytest.raises(TypeError) as info:
            convbench.get_algorithm(name).prepare(spec, w.astype(np.float64))
        _raised_here(info)


def test_strided_input_and_non_array_are_refused():
    spec = SPECS[0]
    x, _, call = _prepared("indirect", spec)
    with pytest.raises(ValueError, match="C-contiguous in layout 'nhwc'") as info:
        call(np.asfortranarray(x))
    _raised_here(info)
    with pytest.raises(TypeError, match="must be a numpy.ndarray") as info:
        call(x.tolist())
    _raised_here(info)


def test_valid_inputs_still_give_the_reference_answer(skeleton):
    for spec in SPECS:
        x, w = spec.random_inputs(1)
        ref = convbench.reference(spec, x, w)
        for name in _names(skeleton, spec):
            y = convbench.get_algorithm(name).prepare(spec, w)(x)
            assert convbench.relative_error(y, ref) < 1e-3, name


def test_non_finite_weight_is_refused_at_prepare_naming_the_index():
    spec = SPECS[0]
    _, w = spec.random_inputs(0)
    w[1, 2, 0, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or inf value\(s\), the first at index \(1, 2, 0, 1\)"):
        convbench.get_algorithm("im2col").prepare(spec, w)


def test_prepare_refuses_a_spec_the_algorithm_does_not_support():
    spec = SPECS[0].replace(kernel=5, padding=2)
    _, w = spec.random_inputs(0)
    with pytest.raises(ValueError, match="not supported: Winograd F.2x2,3x3. needs a 3x3 kernel"):
        convbench.get_algorithm("winograd").prepare(spec, w)


def test_prepare_refuses_a_non_spec():
    with pytest.raises(TypeError, match="needs a convbench.ConvSpec"):
        convbench.get_algorithm("naive").prepare({"batch": 1}, np.zeros((1, 1, 1, 1), np.float32))


class _Recorder(convbench.Algorithm):
    """Records the weight its prepare received; answers with the reference."""

    name = "t-guard-recorder"
    seen: list[np.ndarray] = []

    def prepare(self, spec, weight):
        self.seen.append(weight)
        return lambda x: convbench.reference(spec, x, weight).astype(spec.dtype)


def test_prepare_receives_a_c_contiguous_weight_even_from_a_strided_view():
    spec = SPECS[0]
    _, w = spec.random_inputs(0)
    view = np.asfortranarray(w)
    assert not view.flags.c_contiguous
    _Recorder().prepare(spec, view)
    assert _Recorder.seen[-1].flags.c_contiguous and np.array_equal(_Recorder.seen[-1], w)


def test_a_subclass_calling_super_prepare_is_guarded_once():
    class Child(_Recorder):
        name = "t-guard-child"

        def prepare(self, spec, weight):
            return super().prepare(spec, weight)

    spec = SPECS[0]
    x, w = spec.random_inputs(0)
    call = Child().prepare(spec, w)
    assert getattr(call, "__convbench_spec__", None) == spec
    assert not hasattr(call.__wrapped__, "__convbench_spec__")  # one guard, not two
    with pytest.raises(ValueError):
        call(x[:, :8])


def test_prepare_that_returns_no_callable_is_a_type_error():
    class NoCall(convbench.Algorithm):
        name = "t-guard-nocall"

        def prepare(self, spec, weight):
            return None

    spec = SPECS[0]
    with pytest.raises(TypeError, match="returned a builtins.NoneType, not a callable"):
        NoCall().prepare(spec, spec.random_inputs(0)[1])


def test_registry_refuses_an_object_that_is_not_an_algorithm():
    class LooksLikeOne:
        name = "t-guard-duck"

        def supports(self, spec):
            return None

        def prepare(self, spec, weight):
            return lambda x: x

        def workspace_bytes(self, spec):
            return 0

        def tolerance_for(self, dtype):
            return 1e-4

    with pytest.raises(PluginError, match="not a convbench.Algorithm; subclass convbench.Algorithm"):
        convbench.register(LooksLikeOne)
    assert "t-guard-duck" not in convbench.list_algorithms()


def test_the_kit_catches_an_algorithm_whose_guard_was_stripped():
    """The conformance checks are honest: without the guard they fail."""

    class Unguarded(convbench.Algorithm):
        name = "t-guard-stripped"

        def prepare(self, spec, weight):
            # what the built-ins did before: convert silently, read whatever lies there
            w = np.resize(np.asarray(weight, spec.dtype), spec.weight_shape)

            def call(x):
                x = np.resize(np.asarray(x, spec.dtype), spec.input_shape)
                return convbench.reference(spec, x, w).astype(spec.dtype)

            return call

    Unguarded.prepare = Unguarded.prepare.__wrapped__  # bypass the class-creation hook
    spec = SPECS[0]
    algo = Unguarded()
    for check in (check_refuses_wrong_input_shape, check_refuses_wrong_weight_shape,
                  check_refuses_wrong_dtype, check_refuses_strided_input):
        with pytest.raises(AssertionError):
            check(algo, spec)
    # and with the guard (a fresh class), every one passes
    class Guarded(convbench.Algorithm):
        name = "t-guard-kept"
        prepare = Unguarded.prepare

    for check in (check_refuses_wrong_input_shape, check_refuses_wrong_weight_shape,
                  check_refuses_wrong_dtype, check_refuses_strided_input):
        check(Guarded(), spec)
    assert not hasattr(Unguarded.prepare, "__wrapped__") and hasattr(Guarded.prepare, "__wrapped__")


def test_the_runner_times_the_guarded_call():
    """Every call the runner makes (warm-up, calibration, samples) enters the
    algorithm through the guard, so every algorithm's time includes it alike."""
    import sys

    from convbench.config import parse_config
    from convbench.sweep import measure
    from convbench.sweep.plan import plan
    from convbench.timing import TimingSettings

    callers: list[str] = []

    class Caller(convbench.Algorithm):
        name = "t-guard-caller"

        def prepare(self, spec, weight):
            def call(x):
                callers.append(sys._getframe(1).f_code.co_name)
                return convbench.reference(spec, x, weight).astype(spec.dtype)

            return call

    convbench.register(Caller)
    try:
        config = parse_config(
            "algorithms: [t-guard-caller]\nthreads: [1]\n"
            "layers:\n  - {name: a, channels: 4, size: 6, kernel: 3, padding: 1}\n", "t.yaml")
        (group,) = plan(config).groups
        fast = TimingSettings(min_samples=4, min_time_s=0.0, max_time_s=0.5, target_ci=None,
                              min_sample_time_s=0.0)
        rows = measure.measure_group(group, fast, seed=0, baseline=None).rows
        (row,) = [r for r in rows if r["algorithm"] == "t-guard-caller"]
    finally:
        unregister("t-guard-caller")
    assert row["status"] == "ok", row["reason"]
    assert len(callers) >= 6 and set(callers) == {"guarded"}, callers


@needs_extra("peers", "torch")
def test_torch_peer_one_channel_nhwc_reads_no_garbage():
    """torch 2.13 read garbage for an NHWC view with C == 1 (found by the fuzz test)."""
    spec = convbench.ConvSpec(batch=3, in_channels=1, out_channels=1, height=3, width=6,
                              kernel=(1, 5), stride=(1, 2), layout="nhwc")
    x, w = spec.random_inputs(0)
    call = convbench.get_algorithm("torch").prepare(spec, w)
    ref = convbench.reference(spec, x, w)
    for _ in range(3):
        assert convbench.relative_error(call(x), ref) < 1e-4
