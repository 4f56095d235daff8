"""The one interface every convolution algorithm implements, built-in or plugin.

A plugin author subclasses :class:`Algorithm`, sets ``name`` (and optionally
``description``, ``natural_layout``, ``tolerance``, ``dtypes``), and writes
``prepare``; ``supports`` has a permissive default, ``workspace_bytes`` an
honest one (``None``: unknown, written as an empty cell, never as 0).

Whether an algorithm can run a spec is decided in one place,
:func:`unsupported_reason`: the spec's dtype must be in the algorithm's
``dtypes`` (else the reason is "winograd runs float32, float64 only"), then
the algorithm's own ``supports`` has its say. The runner, the planner, the
guard and the conformance battery all ask it, never ``supports`` directly.

Every subclass's ``prepare`` is wrapped, when the class is created, by the
input guard of :mod:`convbench.guard`: wrong shapes, dtypes, strides and
non-finite weights are refused with a clear error before the algorithm's
code runs, and nothing is converted silently. A plugin gets this without
writing a line.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np

from .guard import guard_prepare, unsupported_reason
from .quant import LSB_TOLERANCE, QUANT_DTYPES
from .spec import ConvSpec

__all__ = ["Algorithm", "ConvCall", "DEFAULT_TOLERANCE", "unsupported_reason"]

Array = np.ndarray
#: What ``prepare`` returns: a call from ``x`` (``spec.input_shape``) to a new
#: array of ``spec.output_shape`` in the spec's dtype.
ConvCall = Callable[[Array], Array]

#: Default correctness tolerances (max relative error against the float64
#: reference) for an algorithm that does the direct sum in another order.
DEFAULT_TOLERANCE: dict[str, float] = {"float32": 1e-4, "float64": 1e-10}


class Algorithm:
    """Base class for a convolution algorithm.

    Class attributes a plugin may set:

    - ``name``: the registry key (``convbench run --algorithms NAME``).
    - ``description``: one line shown by ``convbench list``.
    - ``natural_layout``: ``"nchw"``, ``"nhwc"`` or ``None`` (both native).
      Purely informative; the algorithm's call must still accept the spec's
      layout (see :func:`convbench.layouts.adapt`).
    - ``constraints``: one line naming what it does not support, if anything.
    - ``tolerance``: max relative error per float dtype that still counts as correct
      (a quantized dtype's is :data:`convbench.quant.LSB_TOLERANCE`, in output units).
    - ``dtypes``: the ConvSpec dtypes it runs (default ``("float32", "float64")``);
      a spec of another dtype is a ``skipped`` row with that reason, decided by
      :func:`unsupported_reason` before ``supports`` is asked. An algorithm
      that lists ``"u8s8"`` receives a :class:`~convbench.quant.QuantizedWeight`
      in ``prepare`` and uint8 inputs (see :mod:`convbench.quant`).
    - ``peer``: ``True`` for a production library measured beside convbench's
      own algorithms (torch, oneDNN, ONNX Runtime): ``select``, the report
      and the figures set the best of convbench against the best peer.
    - ``library``: the distribution that does the work (e.g. ``"torch"``), whose
      version ``convbench list`` shows (see :meth:`library_version`).
    - ``memory_traced``: whether tracemalloc sees what the call allocates
      (numpy, numba and Python objects: yes; torch's, oneDNN's, ONNX
      Runtime's or a C library's own allocator: no). ``None`` (default):
      yes unless ``peer``. Where it does not, the memory columns come from
      the process's resident set instead (:mod:`convbench.sweep.footprint`).

    Optional methods: :meth:`implementation` names what really runs for a
    spec (recorded per row), :meth:`library_version` what ``list`` shows.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    natural_layout: ClassVar[str | None] = None
    constraints: ClassVar[str] = "none"
    tolerance: ClassVar[dict[str, float]] = DEFAULT_TOLERANCE
    dtypes: ClassVar[tuple[str, ...]] = ("float32", "float64")
    peer: ClassVar[bool] = False
    library: ClassVar[str | None] = None
    memory_traced: ClassVar[bool | None] = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        """Put the input guard in front of the subclass's own ``prepare``.

        Done here, once per class, so that every way of reaching ``prepare``
        (the registry, the runner, ``algo.prepare(spec, w)`` in a notebook)
        goes through the same checks; see :mod:`convbench.guard`.
        """
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("prepare")
        if own is None:
            return  # inherits an already guarded prepare
        if not callable(own):
            raise TypeError(f"{cls.__qualname__}.prepare must be a method, not {type(own).__name__}.")
        cls.prepare = guard_prepare(own)  # type: ignore[method-assign]

    def supports(self, spec: ConvSpec) -> str | None:
        """``None`` when ``spec`` can be run, else a short reason it cannot.

        Only asked about specs whose dtype is in ``dtypes`` (see
        :func:`unsupported_reason`, which callers use instead of this).
        """
        return None

    def workspace_bytes(self, spec: ConvSpec) -> int | None:
        """Analytic extra memory of one call beyond input, weights and output;
        ``None`` (the default) when it is not known, as for a library's internals.

        An algorithm that needs none returns 0: the default does not claim that.
        """
        return None

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        """Do the input-independent work (packing, transforms, buffers) once.

        ``weight`` is OIHW ``(K, C // groups, R, S)`` in the spec's dtype
        (for a quantized spec, a :class:`~convbench.quant.QuantizedWeight`
        whose ``weight`` is int8 OIHW; ``x`` and the output are then uint8).
        Returns a callable taking ``x`` of ``spec.input_shape`` (in
        ``spec.layout``) and returning a new array of ``spec.output_shape``.

        The guard (:mod:`convbench.guard`) runs first, so an override may
        rely on: ``supports(spec)`` is ``None``; ``weight`` is a finite,
        C-contiguous array of ``spec.weight_shape`` and the spec's dtype; and
        the returned call is only ever given a C-contiguous ``x`` of
        ``spec.input_shape`` and the spec's dtype. Nothing is converted
        for it: a wrong dtype is the caller's ``TypeError``.
        """
        raise NotImplementedError(f"{type(self).__name__}.prepare")

    def implementation(self, spec: ConvSpec) -> str:
        """What really computes ``spec`` (the ``implementation`` column of a row).

        Called by the runner after ``prepare``, inside the case's thread
        limits, so a library that picks a backend per call (PyTorch) can say
        which one. Form: ``family:variant``, e.g. ``openblas:SkylakeX``,
        ``numba:gemm-5x16``, ``torch:Slow2d``. Default: the algorithm's name.
        """
        return self.name

    def library_version(self) -> str | None:
        """``"<library> <version>"`` for ``convbench list`` (``None``: no library).

        The default reads the installed version of ``library`` without importing it.
        """
        if not self.library:
            return None
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"{self.library} {version(self.library)}"
        except PackageNotFoundError:
            return f"{self.library} (version unknown)"

    def tolerance_for(self, dtype: str) -> float:
        """The tolerance for ``dtype``: max relative error for "float32" or "float64",
        max error in output units (:data:`convbench.quant.LSB_TOLERANCE`) for "u8s8"."""
        if dtype in QUANT_DTYPES:
            return float(LSB_TOLERANCE)
        return float(self.tolerance[dtype])

    def __repr__(self) -> str:
        return f"<convbench algorithm {self.name!r}>"
