"""The conformance battery every algorithm passes, built-in or plugin.

In the manner of scikit-learn's ``estimator_checks``: each property is a
plain function ``check_<property>(algorithm, spec)`` that raises
``AssertionError`` with a readable message when the property fails. Use it

- from a plugin's own pytest file, in one line::

      from convbench.testing import parametrize_conformance
      @parametrize_conformance("my-algo")
      def test_conformance(algorithm, spec, check):
          check(algorithm, spec)

- without pytest: ``check_algorithm("my-algo")`` returns one
  :class:`CheckResult` per (check, spec); ``convbench verify`` prints them.

A spec the algorithm does not support (``supports`` gives a reason) is a
``skipped`` result carrying that reason, never a silent pass.

Besides the arithmetic, the battery checks the interface every algorithm
gets from :mod:`convbench.guard`: a wrong input or weight shape, the other
dtype and a strided input are refused with an error naming what was
expected, a prepared call answers right for a second input and again for
the first, and a phased call's steps (:mod:`convbench.phases`), run one by
one, give the call's answer. For numba code, run it bounds-checked
(``convbench verify --boundscheck``, or ``NUMBA_BOUNDSCHECK=1`` with a
``NUMBA_CACHE_DIR`` of its own): a read outside an array is then an
``IndexError``, an ``error`` result.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .algorithm import Algorithm
from .phases import PhasedCall, run_steps
from .reference import conv_error
from .registry import get_algorithm
from .spec import LAYOUTS, DTYPES, ConvSpec

# -- the shape table ---------------------------------------------------------

#: Every MobileNet v1 convolution, spatial size / 8 and channels / 16:
#: (input size, kernel, stride, in, out, depthwise).
_MOBILENET_V1_SCALED = [
    (28, 3, 2, 3, 2, False), (14, 3, 1, 2, 2, True), (14, 1, 1, 2, 4, False),
    (14, 3, 2, 4, 4, True), (7, 1, 1, 4, 8, False), (7, 3, 1, 8, 8, True),
    (7, 1, 1, 8, 8, False), (7, 3, 2, 8, 8, True), (4, 1, 1, 8, 16, False),
    (4, 3, 1, 16, 16, True), (4, 1, 1, 16, 16, False), (4, 3, 2, 16, 16, True),
    (2, 1, 1, 16, 32, False), (2, 3, 1, 32, 32, True), (2, 1, 1, 32, 32, False),
    (2, 3, 2, 32, 32, True), (1, 1, 1, 32, 64, False), (1, 3, 1, 64, 64, True),
    (1, 1, 1, 64, 64, False),
]


def _mobilenet_cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for i, (size, k, s, cin, cout, dw) in enumerate(_MOBILENET_V1_SCALED):
        cases.append((
            f"mobilenet{i:02d}-{'dw' if dw else ''}{k}x{k}s{s}-{cin}to{cout}",
            dict(batch=1, in_channels=cin, out_channels=cout, height=size, width=size,
                 kernel=k, stride=s, padding=k // 2, groups=cin if dw else 1),
        ))
    return cases


def _c(batch=1, cin=3, cout=5, h=7, w=9, kernel=3, stride=1, padding=0, dilation=1, groups=1):
    return dict(batch=batch, in_channels=cin, out_channels=cout, height=h, width=w,
                kernel=kernel, stride=stride, padding=padding, dilation=dilation, groups=groups)


#: Odd shapes: tile remainders, strides, dilation, asymmetric padding,
#: groups, batch, rectangular kernels and inputs, a 1x1 output.
ODD_CASES: list[tuple[str, dict[str, Any]]] = [
    ("1x1-s1", _c(cin=17, cout=5, kernel=1)),
    ("1x1-s2", _c(cin=5, cout=17, h=9, w=8, kernel=1, stride=2)),
    ("1x1-s1-pad1", _c(cin=3, cout=3, kernel=1, padding=1)),
    ("3x3-p0", _c(cin=5, cout=17, kernel=3)),
    ("3x3-p1", _c(cin=17, cout=3, kernel=3, padding=1)),
    ("3x3-p2", _c(cin=3, cout=5, kernel=3, padding=2)),
    ("3x3-s2-p1", _c(cin=5, cout=5, h=9, w=10, kernel=3, stride=2, padding=1)),
    ("3x3-s3", _c(cin=3, cout=5, h=11, w=10, kernel=3, stride=3, padding=1)),
    ("3x3-asym-pad", _c(cin=5, cout=3, kernel=3, padding=(0, 2, 1, 0))),
    ("3x3-pad-hw", _c(cin=3, cout=5, kernel=3, padding=(2, 1))),
    ("3x3-dil2", _c(cin=3, cout=5, h=9, w=9, kernel=3, dilation=2, padding=2)),
    ("3x3-dil2-s2", _c(cin=3, cout=3, h=10, w=11, kernel=3, stride=2, dilation=2, padding=1)),
    ("5x5-p0", _c(cin=3, cout=5, h=9, w=8, kernel=5)),
    ("5x5-p2", _c(cin=5, cout=3, h=8, w=9, kernel=5, padding=2)),
    ("7x7-s2-p3", _c(cin=3, cout=5, h=13, w=12, kernel=7, stride=2, padding=3)),
    ("groups2", _c(cin=6, cout=10, kernel=3, padding=1, groups=2)),
    ("groups3-s2", _c(cin=9, cout=3, h=8, w=8, kernel=3, stride=2, groups=3)),
    ("depthwise", _c(cin=5, cout=5, kernel=3, padding=1, groups=5)),
    ("depthwise-mult2", _c(cin=3, cout=6, kernel=3, padding=1, groups=3)),
    ("depthwise-s2", _c(cin=17, cout=17, h=9, w=9, kernel=3, stride=2, padding=1, groups=17)),
    ("c1-k1", _c(cin=1, cout=1, kernel=3, padding=1)),
    ("c1-k17", _c(cin=1, cout=17, kernel=3)),
    ("batch3", _c(batch=3, cin=5, cout=3, kernel=3, padding=1)),
    ("batch3-1x1", _c(batch=3, cin=5, cout=3, kernel=1)),
    ("kernel-1x5", _c(cin=3, cout=5, kernel=(1, 5), padding=(0, 2))),
    ("kernel-5x1", _c(cin=5, cout=3, kernel=(5, 1), padding=(2, 0))),
    ("kernel-3x1-s-2x1", _c(cin=3, cout=3, kernel=(3, 1), stride=(2, 1))),
    ("output-1x1", _c(cin=5, cout=3, h=3, w=3, kernel=3)),
    ("tall-input", _c(cin=3, cout=3, h=13, w=2, kernel=3, padding=1)),
]


def conformance_cases() -> list[tuple[str, dict[str, Any]]]:
    """(id, ConvSpec kwargs without layout/dtype) for the whole shape table."""
    return _mobilenet_cases() + ODD_CASES


def conformance_specs(
    layouts: Iterable[str] = LAYOUTS, dtypes: Iterable[str] = DTYPES
) -> list[tuple[str, ConvSpec]]:
    """Every table shape in every layout and dtype, as (id, spec)."""
    specs = []
    for (case_id, kwargs), layout, dtype in itertools.product(
        conformance_cases(), tuple(layouts), tuple(dtypes)
    ):
        specs.append((f"{case_id}-{layout}-{dtype}", ConvSpec(**kwargs, layout=layout, dtype=dtype)))
    return specs


# -- the checks ---------------------------------------------------------------


def _prepared(algorithm: Algorithm, spec: ConvSpec, seed: int):
    x, w = spec.random_inputs(seed)
    return x, w, algorithm.prepare(spec, w.copy())


def check_output_shape_and_dtype(algorithm: Algorithm, spec: ConvSpec) -> None:
    """The call returns a new array of ``spec.output_shape`` in the spec's dtype."""
    x, _, call = _prepared(algorithm, spec, seed=1)
    y = call(x)
    assert isinstance(y, np.ndarray), f"returned {type(y).__name__}, not a numpy array"
    assert y.shape == spec.output_shape, f"output shape {y.shape}, expected {spec.output_shape}"
    assert y.dtype == spec.np_dtype, f"output dtype {y.dtype}, expected {spec.dtype}"
    assert not np.shares_memory(y, x), "output shares memory with the input"


def check_matches_reference(algorithm: Algorithm, spec: ConvSpec) -> float:
    """Max relative error against the float64 reference is within tolerance, for an
    input the prepared call sees after another, different one.

    So on every spec (not only on the sample of :func:`check_prepared_call_is_reusable`)
    state kept from one call to the next shows up as a wrong answer, and an output
    buffer reused by the next call shows up as the first answer changing.
    """
    x, w, call = _prepared(algorithm, spec, seed=2)
    other, _ = spec.random_inputs(6)
    first = call(other)
    kept = np.array(first, copy=True)
    err = conv_error(spec, call(x), x, w)
    tol = algorithm.tolerance_for(spec.dtype)
    assert err <= tol, f"max relative error {err:.3g} > tolerance {tol:.3g} (on the second of two inputs)"
    assert np.array_equal(np.asarray(first), kept, equal_nan=True), \
        "the second call changed the array the first call returned (an output buffer reused between calls?)"
    return err


def check_input_and_weight_unchanged(algorithm: Algorithm, spec: ConvSpec) -> None:
    """Neither ``prepare`` nor the call writes to the caller's arrays."""
    x, w = spec.random_inputs(3)
    x0, w0 = x.copy(), w.copy()
    algorithm.prepare(spec, w)(x)
    assert np.array_equal(w, w0), "prepare or the call modified the weight array"
    assert np.array_equal(x, x0), "the call modified its input array"


def check_prepared_call_is_reusable(algorithm: Algorithm, spec: ConvSpec) -> None:
    """One prepared call gives the right answer for a second, different input,
    and again for the first: no state kept between calls, no read of memory
    the call does not own (which shows as answers that change from call to
    call, or NaN)."""
    x1, w = spec.random_inputs(4)
    x2, _ = spec.random_inputs(5)
    call = algorithm.prepare(spec, w)
    tol = algorithm.tolerance_for(spec.dtype)
    for which, x in (("first", x1), ("second", x2), ("first input, again: the third", x1)):
        err = conv_error(spec, call(x), x, w)
        assert err <= tol, (
            f"{which} call's error {err:.3g} > tolerance {tol:.3g} "
            "(state kept between calls, or a read outside the arrays?)"
        )


def _refused(what: str, kinds: tuple[type[Exception], ...], fn: Callable[[], Any],
             mentions: tuple[str, ...]) -> None:
    """Assert ``fn()`` raises one of ``kinds`` whose message names ``mentions``."""
    names = " or ".join(k.__name__ for k in kinds)
    try:
        fn()
    except kinds as exc:
        missing = [m for m in mentions if m not in str(exc)]
        assert not missing, f"{what}: the {type(exc).__name__} does not name {missing}: {exc}"
        return
    except Exception as exc:  # refused, but deep inside and with an unhelpful error
        raise AssertionError(f"{what}: raised {type(exc).__name__} ({exc}), not a clear {names}") from exc
    raise AssertionError(f"{what}: accepted; expected a {names}")


def _off_by_one(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """``shape`` with one axis one smaller (one larger where it is 1), per axis."""
    out = []
    for axis, size in enumerate(shape):
        wrong = list(shape)
        wrong[axis] = size - 1 if size > 1 else size + 1
        out.append(tuple(wrong))
    return out


def check_refuses_wrong_input_shape(algorithm: Algorithm, spec: ConvSpec) -> None:
    """The prepared call raises ``ValueError`` naming the expected and received
    shape for an input one off along any axis, or missing the batch axis."""
    x, w = spec.random_inputs(6)
    call = algorithm.prepare(spec, w)
    for shape in _off_by_one(spec.input_shape):
        bad = np.zeros(shape, spec.dtype)
        _refused(f"input of shape {shape} (spec.input_shape is {spec.input_shape})", (ValueError,),
                 lambda: call(bad), (str(spec.input_shape), str(shape)))
    _refused(f"3-D input of shape {x[0].shape}", (ValueError,), lambda: call(x[0]),
             (str(spec.input_shape),))


def check_refuses_wrong_weight_shape(algorithm: Algorithm, spec: ConvSpec) -> None:
    """``prepare`` raises ``ValueError`` naming the expected and received shape
    for a weight one off along any axis (e.g. ``C // groups`` one too small)."""
    for shape in _off_by_one(spec.weight_shape):
        bad = np.zeros(shape, spec.dtype)
        _refused(f"weight of shape {shape} (spec.weight_shape is {spec.weight_shape})", (ValueError,),
                 lambda: algorithm.prepare(spec, bad), (str(spec.weight_shape), str(shape)))


def check_refuses_wrong_dtype(algorithm: Algorithm, spec: ConvSpec) -> None:
    """A weight or input of the other float dtype is a ``TypeError`` naming
    both dtypes, not a silent conversion."""
    other = "float64" if spec.dtype == "float32" else "float32"
    x, w = spec.random_inputs(7)
    _refused(f"{other} weight for a {spec.dtype} spec", (TypeError,),
             lambda: algorithm.prepare(spec, w.astype(other)), (spec.dtype, other))
    call = algorithm.prepare(spec, w)
    _refused(f"{other} input for a {spec.dtype} spec", (TypeError,),
             lambda: call(x.astype(other)), (spec.dtype, other))


def check_refuses_strided_input(algorithm: Algorithm, spec: ConvSpec) -> None:
    """A strided view of the right shape and dtype (not C-contiguous in the
    spec's layout) is a ``ValueError``: kernels index the input as laid out."""
    x, w = spec.random_inputs(8)
    axis = int(np.argmax(spec.input_shape))
    if spec.input_shape[axis] == 1:
        return  # a one-element array is contiguous whatever its strides
    wide = np.repeat(x, 2, axis=axis)
    view = wide[(slice(None),) * axis + (slice(None, None, 2),)]
    assert view.shape == x.shape and not view.flags.c_contiguous
    call = algorithm.prepare(spec, w)
    _refused("a strided (non C-contiguous) input", (ValueError,), lambda: call(view), ("contiguous",))


def check_workspace_is_nonnegative_int(algorithm: Algorithm, spec: ConvSpec) -> None:
    """``workspace_bytes`` is an int >= 0, or ``None`` (unknown)."""
    ws = algorithm.workspace_bytes(spec)
    assert ws is None or (isinstance(ws, (int, np.integer)) and ws >= 0), (
        f"workspace_bytes gave {ws!r}; an int >= 0, or None when unknown")


def _frozen(v: Any) -> Any:
    """A copy of an intermediate (an array, or a tuple or list of them) to compare with later."""
    return type(v)(map(_frozen, v)) if isinstance(v, (tuple, list)) else np.array(v, copy=True)


def _same(a: Any, b: Any) -> bool:
    """Equal bit for bit, NaN equal to NaN: arrays (of one shape and dtype), or tuples or lists of them."""
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


def check_phases_compose(algorithm: Algorithm, spec: ConvSpec) -> None:
    """A phased call's steps, run one by one (``convbench.phases.run_steps``), give
    the call's answer bit for bit, and each step run twice on the intermediate it
    receives gives the same result both times and leaves that intermediate as it
    was: the phase pass feeds a step the same intermediate many times."""
    x, _, call = _prepared(algorithm, spec, seed=9)
    if not isinstance(call, PhasedCall):
        return  # a plain call is one ``other`` step, the call itself
    y = call(x)
    values = run_steps(call, x)
    assert _same(values[-1], y), f"the steps of {call!r}, run one by one, differ from the call"
    for i, (phase, fn) in enumerate(call.steps):
        given = _frozen(values[i])
        first = _frozen(fn(values[i]))
        assert _same(values[i], given), f"step {i} ({phase}) of {call!r} modified the intermediate given"
        assert _same(fn(values[i]), first), \
            f"step {i} ({phase}) of {call!r} gave another result the second time on the same intermediate"


CHECKS: tuple[Callable[[Algorithm, ConvSpec], Any], ...] = (
    check_matches_reference,
    check_output_shape_and_dtype,
    check_input_and_weight_unchanged,
    check_prepared_call_is_reusable,
    check_workspace_is_nonnegative_int,
    check_refuses_wrong_input_shape,
    check_refuses_wrong_weight_shape,
    check_refuses_wrong_dtype,
    check_refuses_strided_input,
    check_phases_compose,
)

#: The checks ``convbench verify`` runs by default on every spec (the rest
#: run on a sample, they are about the interface, not the arithmetic).
PER_SPEC_CHECKS = (check_matches_reference, check_output_shape_and_dtype)


# -- running the battery ------------------------------------------------------


@dataclass
class CheckResult:
    """The outcome of one check on one spec."""

    algorithm: str
    check: str
    spec_id: str
    status: str  # "passed", "failed", "skipped" or "error"
    error: float | None = None  # max relative error, for check_matches_reference
    message: str = ""


def run_check(
    algorithm: Algorithm, check: Callable[[Algorithm, ConvSpec], Any], spec_id: str, spec: ConvSpec
) -> CheckResult:
    """Run one check; unsupported specs are ``skipped`` with the algorithm's reason."""
    reason = algorithm.supports(spec)
    if reason is not None:
        return CheckResult(algorithm.name, check.__name__, spec_id, "skipped", message=str(reason))
    try:
        value = check(algorithm, spec)
    except AssertionError as exc:
        return CheckResult(algorithm.name, check.__name__, spec_id, "failed", message=str(exc))
    except Exception as exc:  # an algorithm may raise anything; the battery reports it
        return CheckResult(
            algorithm.name, check.__name__, spec_id, "error", message=f"{type(exc).__name__}: {exc}"
        )
    error = float(value) if isinstance(value, float) else None
    return CheckResult(algorithm.name, check.__name__, spec_id, "passed", error=error)


def _battery(specs: list[tuple[str, ConvSpec]]) -> Iterator[tuple[Callable, str, ConvSpec]]:
    for i, (spec_id, spec) in enumerate(specs):
        for check in CHECKS:
            # interface checks on every 7th spec keep the battery quick; a second input
            # through one prepared call is checked on every spec by check_matches_reference
            if check in PER_SPEC_CHECKS or i % 7 == 0:
                yield check, spec_id, spec


def check_algorithm(
    algorithm: Algorithm | str, specs: list[tuple[str, ConvSpec]] | None = None
) -> list[CheckResult]:
    """Run the whole battery on one algorithm (an object or a registered name)."""
    algo = get_algorithm(algorithm) if isinstance(algorithm, str) else algorithm
    specs = conformance_specs() if specs is None else specs
    return [run_check(algo, check, spec_id, spec) for check, spec_id, spec in _battery(specs)]


def parametrize_conformance(*names: str, specs: list[tuple[str, ConvSpec]] | None = None):
    """A pytest decorator giving ``(algorithm, spec, check)`` for every battery case.

    Unsupported specs become skips that show the algorithm's reason.
    """
    import pytest

    specs = conformance_specs() if specs is None else specs
    params = []
    for name in names:
        algo = get_algorithm(name)
        for check, spec_id, spec in _battery(specs):
            reason = algo.supports(spec)
            marks = [pytest.mark.skip(reason=f"{name}: {reason}")] if reason else []
            params.append(pytest.param(algo, spec, check, marks=marks,
                                       id=f"{name}-{check.__name__[6:]}-{spec_id}"))
    return pytest.mark.parametrize("algorithm, spec, check", params)
