"""The input guard every algorithm's ``prepare`` and call go through.

:class:`convbench.Algorithm` wraps each subclass's ``prepare`` with
:func:`guard_prepare` when the class is created, so a built-in, a peer and a
plugin made by ``convbench new-plugin`` all get the same checks without
writing them:

- ``prepare(spec, weight)`` refuses a ``spec`` that is not a
  :class:`~convbench.ConvSpec` or that the algorithm cannot run (its
  ``dtypes`` or ``supports``: :func:`unsupported_reason`),
  and a ``weight`` that is not a numpy array of ``spec.weight_shape`` in the
  spec's dtype, or that holds NaN or inf (the finiteness policy: one scan of
  the weights, once, at prepare). The algorithm's own ``prepare`` then gets a
  C-contiguous weight (a strided view is copied once, untimed by the calls).
- for a quantized spec (``u8s8``) the weight is a
  :class:`~convbench.quant.QuantizedWeight` instead: an int8 array of
  ``spec.weight_shape``, ``w_scale`` float32 ``(K,)`` positive and finite,
  ``bias`` int32 ``(K,)``, zero points ints in 0..255 and scales positive
  and finite (:func:`check_quantized_weight`); the input is uint8.
- the prepared call refuses an ``x`` that is not a numpy array of
  ``spec.input_shape`` in the spec's dtype, C-contiguous in ``spec.layout``
  (the strides every built-in kernel relies on: a transposed view of the
  other layout has the right shape and the wrong strides). Inputs are not
  scanned for NaN (that would cost a pass over ``x`` in every timed call).

Nothing is converted: a float64 array for a float32 spec is a ``TypeError``,
not a silent ``astype`` whose cost would land in the measured time. Shape
and stride mismatches are ``ValueError``. Every message names the algorithm,
the spec, what was expected and what was received, and is raised here, in
the frame below the caller's own line, before any algorithm code runs.

The per-call check costs well under 2 µs (``benchmarks/guard.py``); the
runner times the guarded call, so every algorithm pays it alike.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from .phases import PhasedCall
from .quant import QuantizedWeight
from .spec import FLOAT_DTYPES, ConvSpec

Array = np.ndarray
ConvCall = Callable[[Array], Array]

#: Marks a ``prepare`` already wrapped (a subclass that does not override
#: ``prepare`` inherits the wrapped one and must not be wrapped twice).
_GUARDED = "__convbench_guarded__"

_LAYOUT_AXES = {"nchw": "(N, C, H, W)", "nhwc": "(N, H, W, C)"}


def _what(value: Any) -> str:
    """A short description of a received object: its type, shape and dtype."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return f"a {type(value).__module__}.{type(value).__qualname__}"


def _for(name: str, spec: ConvSpec) -> str:
    return f"{name!r} for spec {spec.describe()}"


def check_spec(name: str, spec: Any) -> None:
    """``TypeError`` unless ``spec`` is a :class:`ConvSpec`."""
    if not isinstance(spec, ConvSpec):
        raise TypeError(
            f"{name!r}: prepare(spec, weight) needs a convbench.ConvSpec as spec; got {_what(spec)}."
        )


def unsupported_reason(algorithm: Any, spec: ConvSpec) -> str | None:
    """Why ``algorithm`` cannot run ``spec`` (a short reason), or ``None`` if it can.

    The one place this is decided: first the spec's dtype against the
    algorithm's ``dtypes`` ("winograd runs float32, float64 only"), then the
    algorithm's own ``supports``, which is never asked about a dtype the
    algorithm does not list. The runner, the planner, this guard and the
    conformance battery call this, not ``supports``.
    """
    dtypes = tuple(getattr(algorithm, "dtypes", FLOAT_DTYPES))
    if spec.dtype not in dtypes:
        name = getattr(algorithm, "name", "") or type(algorithm).__name__
        return f"{name} runs {', '.join(dtypes)} only"
    return algorithm.supports(spec)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _positive_finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and bool(np.isfinite(v)) and v > 0


def check_quantized_weight(name: str, spec: ConvSpec, qw: Any) -> QuantizedWeight:
    """A quantized spec's weight, checked field by field, its arrays C-contiguous;
    a clear ``TypeError`` (wrong kind or dtype) or ``ValueError`` (shape, range) otherwise."""
    where = _for(name, spec)
    k = spec.out_channels
    if not isinstance(qw, QuantizedWeight):
        raise TypeError(
            f"{where}: a {spec.dtype} spec's weight must be a convbench.quant.QuantizedWeight (an int8 "
            f"OIHW weight of shape {spec.weight_shape} with its scales, zero points and bias); got "
            f"{_what(qw)}. spec.random_inputs(seed) draws one."
        )
    arrays = (("weight", np.int8, spec.weight_shape), ("w_scale", np.float32, (k,)), ("bias", np.int32, (k,)))
    for field, dtype, shape in arrays:
        a = getattr(qw, field)
        if not isinstance(a, np.ndarray) or a.dtype != dtype:
            raise TypeError(f"{where}: QuantizedWeight.{field} must be a {np.dtype(dtype).name} array "
                            f"of shape {shape}; got {_what(a)}.")
        if a.shape != shape:
            raise ValueError(f"{where}: QuantizedWeight.{field} must have shape {shape}"
                             f"{' (K, C // groups, R, S) (OIHW)' if field == 'weight' else ' (K,)'}; "
                             f"got shape {a.shape}.")
    bad = ~(np.isfinite(qw.w_scale) & (qw.w_scale > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{where}: QuantizedWeight.w_scale must be positive and finite; "
                         f"output channel {i} has {qw.w_scale[i]!r}.")
    for field in ("x_zero", "y_zero"):
        v = getattr(qw, field)
        if not _is_int(v) or not 0 <= v <= 255:
            raise ValueError(f"{where}: QuantizedWeight.{field} must be an int in 0..255 (a u8 zero point); "
                             f"got {v!r}.")
    for field in ("x_scale", "y_scale"):
        v = getattr(qw, field)
        if not _positive_finite(v):
            raise ValueError(f"{where}: QuantizedWeight.{field} must be a positive finite number; got {v!r}.")
    if all(getattr(qw, f).flags.c_contiguous for f, _, _ in arrays):
        return qw
    return QuantizedWeight(**{**qw.__dict__, **{f: np.ascontiguousarray(getattr(qw, f)) for f, _, _ in arrays}})


def check_weight(name: str, spec: ConvSpec, weight: Any) -> Array:
    """The weight as a C-contiguous array, or a clear ``TypeError``/``ValueError``.

    Expected: a numpy array of ``spec.weight_shape`` (OIHW, ``(K, C // groups,
    R, S)``), of the spec's dtype, with no NaN or inf. A quantized spec's
    weight goes to :func:`check_quantized_weight`.
    """
    if spec.is_quantized:
        return check_quantized_weight(name, spec, weight)  # type: ignore[return-value]
    where = _for(name, spec)
    if not isinstance(weight, np.ndarray):
        raise TypeError(
            f"{where}: the weight must be a numpy.ndarray of shape {spec.weight_shape} "
            f"and dtype {spec.dtype}; got {_what(weight)}."
        )
    if weight.dtype != spec.np_dtype:
        raise TypeError(
            f"{where}: the weight must be {spec.dtype}, the spec's dtype; got {weight.dtype}. "
            f"convbench never converts dtypes silently: pass weight.astype({spec.dtype!r}) "
            "or a spec with the weight's dtype."
        )
    if weight.shape != spec.weight_shape:
        raise ValueError(
            f"{where}: the weight must have shape (K, C // groups, R, S) = {spec.weight_shape} "
            f"(OIHW); got shape {weight.shape}."
        )
    finite = np.isfinite(weight)
    if not finite.all():
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"{where}: the weight holds {int(finite.size - finite.sum())} NaN or inf value(s), "
            f"the first at index {first} ({weight[first]!r}); a benchmark of a non-finite "
            "layer compares nothing."
        )
    return np.ascontiguousarray(weight)


def refuse_input(name: str, spec: ConvSpec, x: Any) -> None:
    """Raise the error that says why ``x`` is not a valid input for ``spec``.

    Called by a guarded call only once its fast test has failed, so the
    message can take its time.
    """
    where = _for(name, spec)
    want = spec.np_dtype.name
    expected = f"shape {spec.input_shape} {_LAYOUT_AXES[spec.layout]} and dtype {want}"
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{where}: the input must be a numpy.ndarray of {expected}; got {_what(x)}.")
    if x.dtype != spec.np_dtype:
        whose = "the spec's dtype" if want == spec.dtype else f"a {spec.dtype} spec's activations"
        raise TypeError(
            f"{where}: the input must be {want}, {whose}; got {x.dtype}. "
            f"convbench never converts dtypes silently: pass x.astype({want!r})."
        )
    if x.shape != spec.input_shape:
        raise ValueError(
            f"{where}: the input must have shape {spec.input_shape}, spec.input_shape in "
            f"layout {spec.layout!r} {_LAYOUT_AXES[spec.layout]}; got shape {x.shape}."
        )
    if not x.flags.c_contiguous:
        raise ValueError(
            f"{where}: the input must be C-contiguous in layout {spec.layout!r} "
            f"{_LAYOUT_AXES[spec.layout]}; got a strided view (strides {x.strides}). "
            "Pass np.ascontiguousarray(x)."
        )
    raise AssertionError("refuse_input called with a valid input")  # pragma: no cover


def guard_call(name: str, spec: ConvSpec, call: ConvCall) -> ConvCall:
    """``call`` behind the per-call input check (shape, dtype, C-contiguity).

    The fast path is four attribute reads and comparisons; the slow path
    (:func:`refuse_input`) only runs to explain a refusal. A
    :class:`~convbench.phases.PhasedCall` stays one: the check goes in front
    of its first step, so its phases still compose to the (guarded) call.
    """
    shape = spec.input_shape
    dtype = spec.np_dtype
    ndarray = np.ndarray
    first = call.steps[0][1] if isinstance(call, PhasedCall) else call

    def guarded(x: Array) -> Array:
        # ``type(x) is ndarray`` first: exact arrays skip isinstance's MRO walk;
        # ``x.dtype is dtype`` first: native float dtypes are singletons.
        if (
            (type(x) is not ndarray and not isinstance(x, ndarray))
            or x.shape != shape
            or (x.dtype is not dtype and x.dtype != dtype)
            or not x.flags.c_contiguous
        ):
            refuse_input(name, spec, x)
        return first(x)

    result: Any = guarded
    if isinstance(call, PhasedCall):
        result = PhasedCall(((call.steps[0][0], guarded), *call.steps[1:]))
    else:
        guarded.__qualname__ = f"guarded call of {name}"
    result.__wrapped__ = call
    result.__convbench_spec__ = spec
    return result


def guard_prepare(prepare: Callable[..., ConvCall]) -> Callable[..., ConvCall]:
    """Wrap an algorithm class's ``prepare`` with the checks above.

    The wrapper checks ``spec``, :func:`unsupported_reason` and the weight, calls the
    algorithm's ``prepare`` with a C-contiguous weight, and wraps what it
    returns with :func:`guard_call`. A ``prepare`` that calls
    ``super().prepare`` on the same spec gets its parent's guarded call back
    unwrapped a second time.
    """
    if getattr(prepare, _GUARDED, False):
        return prepare

    @functools.wraps(prepare)
    # ``self`` is a convbench.Algorithm; not imported here, as algorithm.py imports this module
    def guarded_prepare(self: Any, spec: ConvSpec, weight: Any) -> ConvCall:
        name = getattr(self, "name", "") or type(self).__name__
        check_spec(name, spec)
        reason = unsupported_reason(self, spec)
        if reason is not None:
            raise ValueError(f"{_for(name, spec)}: not supported: {reason}.")
        weight = check_weight(name, spec, weight)
        call = prepare(self, spec, weight)
        if not callable(call):
            raise TypeError(
                f"{name!r}: prepare() returned {_what(call)}, not a callable; it must return "
                "a call from x (spec.input_shape) to y (spec.output_shape)."
            )
        if getattr(call, "__convbench_spec__", None) == spec:
            return call  # already guarded for this spec (super().prepare)
        return guard_call(name, spec, call)

    setattr(guarded_prepare, _GUARDED, True)
    return guarded_prepare
