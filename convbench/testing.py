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
``skipped`` result carrying that reason, never a silent pass. The battery
covers the dtypes the algorithm declares (``Algorithm.dtypes``): an algorithm
that lists ``u8s8`` also goes through the 8-bit battery
(:func:`~convbench.conformance_cases.quantized_specs`: every table shape,
zero points 0/128/255, tiny and huge multipliers, saturation at both ends,
rounding ties), its answers within ``LSB_TOLERANCE`` (1) of the exact
reference; a dtype it does not list is left out, not reported as skipped
case by case (``convbench list`` shows each algorithm's dtypes).

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

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from .algorithm import Algorithm, unsupported_reason
from .conformance_cases import (  # noqa: F401 (the battery's cases, re-exported)
    CORNER_SHAPES, ODD_CASES, QUANT_CORNERS, BatterySpec, conformance_cases, conformance_specs, quantized_specs,
)
from .phases import PhasedCall, run_steps
from .quant import QuantizedWeight
from .reference import conv_error
from .registry import get_algorithm
from .spec import ConvSpec

# -- the checks ---------------------------------------------------------------


def _prepared(algorithm: Algorithm, spec: ConvSpec, seed: int):
    x, w = spec.random_inputs(seed)
    return x, w, algorithm.prepare(spec, w.copy())


def _unit(spec: ConvSpec) -> str:
    """How an error is counted: "LSB" for a quantized spec, else "relative"."""
    return "LSB" if spec.is_quantized else "relative"


def _err(spec: ConvSpec, err: float) -> str:
    return f"{err:g} LSB" if spec.is_quantized else f"{err:.3g}"


def _same_weight(a: Any, b: Any) -> bool:
    """Two weights (arrays, or QuantizedWeights field by field) are equal."""
    if isinstance(a, QuantizedWeight) and isinstance(b, QuantizedWeight):
        return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("weight", "w_scale", "bias")) and \
            (a.x_scale, a.x_zero, a.y_scale, a.y_zero) == (b.x_scale, b.x_zero, b.y_scale, b.y_zero)
    return np.array_equal(a, b)


def _weight_of_shape(spec: ConvSpec, shape: tuple[int, ...]) -> Any:
    """A weight of ``shape`` for ``spec``: zeros of its dtype, or a QuantizedWeight with them."""
    if not spec.is_quantized:
        return np.zeros(shape, spec.dtype)
    _, qw = spec.random_inputs(0)
    return QuantizedWeight(weight=np.zeros(shape, np.int8), w_scale=qw.w_scale, bias=qw.bias, x_scale=qw.x_scale,
                           x_zero=qw.x_zero, y_scale=qw.y_scale, y_zero=qw.y_zero)


def check_output_shape_and_dtype(algorithm: Algorithm, spec: ConvSpec) -> None:
    """The call returns a new array of ``spec.output_shape`` in the spec's dtype."""
    x, _, call = _prepared(algorithm, spec, seed=1)
    y = call(x)
    assert isinstance(y, np.ndarray), f"returned {type(y).__name__}, not a numpy array"
    assert y.shape == spec.output_shape, f"output shape {y.shape}, expected {spec.output_shape}"
    assert y.dtype == spec.np_dtype, f"output dtype {y.dtype}, expected {spec.np_dtype.name} ({spec.dtype} spec)"
    assert not np.shares_memory(y, x), "output shares memory with the input"


def check_matches_reference(algorithm: Algorithm, spec: ConvSpec) -> float:
    """Max relative error against the float64 reference is within tolerance, for an
    input the prepared call sees after another, different one. For a quantized spec:
    the largest difference from the exact uint8 reference, in LSB, is at most 1.

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
    assert err <= tol, (f"max {_unit(spec)} error {_err(spec, err)} > tolerance {_err(spec, tol)} "
                        f"(on the second of two inputs)")
    assert np.array_equal(np.asarray(first), kept, equal_nan=True), \
        "the second call changed the array the first call returned (an output buffer reused between calls?)"
    return err


def check_input_and_weight_unchanged(algorithm: Algorithm, spec: ConvSpec) -> None:
    """Neither ``prepare`` nor the call writes to the caller's arrays."""
    x, w = spec.random_inputs(3)
    x0, w0 = x.copy(), w.copy()
    algorithm.prepare(spec, w)(x)
    assert _same_weight(w, w0), "prepare or the call modified the weight array"
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
            f"{which} call's error {_err(spec, err)} > tolerance {_err(spec, tol)} "
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
        bad = np.zeros(shape, spec.np_dtype)
        _refused(f"input of shape {shape} (spec.input_shape is {spec.input_shape})", (ValueError,),
                 lambda: call(bad), (str(spec.input_shape), str(shape)))
    _refused(f"3-D input of shape {x[0].shape}", (ValueError,), lambda: call(x[0]),
             (str(spec.input_shape),))


def check_refuses_wrong_weight_shape(algorithm: Algorithm, spec: ConvSpec) -> None:
    """``prepare`` raises ``ValueError`` naming the expected and received shape
    for a weight one off along any axis (e.g. ``C // groups`` one too small)."""
    for shape in _off_by_one(spec.weight_shape):
        bad = _weight_of_shape(spec, shape)
        _refused(f"weight of shape {shape} (spec.weight_shape is {spec.weight_shape})", (ValueError,),
                 lambda: algorithm.prepare(spec, bad), (str(spec.weight_shape), str(shape)))


def check_refuses_wrong_dtype(algorithm: Algorithm, spec: ConvSpec) -> None:
    """A weight or input of the other float dtype is a ``TypeError`` naming
    both dtypes, not a silent conversion. For a quantized spec: a float32
    weight array (not a QuantizedWeight) and a float32 or int8 input."""
    other = "float64" if spec.dtype == "float32" else "float32"
    x, w = spec.random_inputs(7)
    if spec.is_quantized:
        _refused(f"float32 array as the weight of a {spec.dtype} spec", (TypeError,),
                 lambda: algorithm.prepare(spec, w.weight.astype(np.float32)), (spec.dtype, "QuantizedWeight"))
        call = algorithm.prepare(spec, w)
        for bad in ("float32", "int8"):
            _refused(f"{bad} input for a {spec.dtype} spec", (TypeError,), lambda: call(x.astype(bad)),
                     ("uint8", f"got {bad}"))
        return
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
    error: float | None = None  # the error of check_matches_reference, in ``unit``
    message: str = ""
    unit: str = "relative"  # how ``error`` counts: "relative" (float specs) or "LSB" (quantized)


def run_check(
    algorithm: Algorithm, check: Callable[[Algorithm, ConvSpec], Any], spec_id: str, spec: ConvSpec
) -> CheckResult:
    """Run one check; unsupported specs are ``skipped`` with the algorithm's reason."""
    reason = unsupported_reason(algorithm, spec)
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
    return CheckResult(algorithm.name, check.__name__, spec_id, "passed", error=error, unit=_unit(spec))


def _battery(specs: list[tuple[str, ConvSpec]], algorithm: Algorithm) -> Iterator[tuple[Callable, str, ConvSpec]]:
    """The (check, id, spec) cases of ``specs`` in the dtypes ``algorithm`` declares."""
    dtypes = tuple(getattr(algorithm, "dtypes", ("float32", "float64")))
    specs = [(spec_id, spec) for spec_id, spec in specs if spec.dtype in dtypes]
    for i, (spec_id, spec) in enumerate(specs):
        for check in CHECKS:
            # interface checks on every 7th spec keep the battery quick; a second input
            # through one prepared call is checked on every spec by check_matches_reference
            if check in PER_SPEC_CHECKS or i % 7 == 0:
                yield check, spec_id, spec


def check_algorithm(
    algorithm: Algorithm | str, specs: list[tuple[str, ConvSpec]] | None = None
) -> list[CheckResult]:
    """Run the whole battery on one algorithm (an object or a registered name), in the
    dtypes it declares."""
    algo = get_algorithm(algorithm) if isinstance(algorithm, str) else algorithm
    specs = conformance_specs() if specs is None else specs
    return [run_check(algo, check, spec_id, spec) for check, spec_id, spec in _battery(specs, algo)]


def parametrize_conformance(*names: str, specs: list[tuple[str, ConvSpec]] | None = None):
    """A pytest decorator giving ``(algorithm, spec, check)`` for every battery case.

    Unsupported specs become skips that show the algorithm's reason; each algorithm
    gets the specs of the dtypes it declares.
    """
    import pytest

    specs = conformance_specs() if specs is None else specs
    params = []
    for name in names:
        algo = get_algorithm(name)
        for check, spec_id, spec in _battery(specs, algo):
            reason = unsupported_reason(algo, spec)
            marks = [pytest.mark.skip(reason=f"{name}: {reason}")] if reason else []
            params.append(pytest.param(algo, spec, check, marks=marks,
                                       id=f"{name}-{check.__name__[6:]}-{spec_id}"))
    return pytest.mark.parametrize("algorithm, spec, check", params)
