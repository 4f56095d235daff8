"""The one interface every convolution algorithm implements, built-in or plugin.

A plugin author subclasses :class:`Algorithm`, sets ``name`` (and optionally
``description``, ``natural_layout``, ``tolerance``), and writes ``prepare``;
``supports`` and ``workspace_bytes`` have permissive defaults.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np

from .spec import ConvSpec

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
    - ``tolerance``: max relative error per dtype that still counts as correct.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    natural_layout: ClassVar[str | None] = None
    constraints: ClassVar[str] = "none"
    tolerance: ClassVar[dict[str, float]] = DEFAULT_TOLERANCE

    def supports(self, spec: ConvSpec) -> str | None:
        """``None`` when ``spec`` can be run, else a short reason it cannot."""
        return None

    def workspace_bytes(self, spec: ConvSpec) -> int:
        """Analytic extra memory of one call beyond input, weights and output."""
        return 0

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        """Do the input-independent work (packing, transforms, buffers) once.

        ``weight`` is OIHW ``(K, C // groups, R, S)`` in the spec's dtype.
        Returns a callable taking ``x`` of ``spec.input_shape`` (in
        ``spec.layout``) and returning a new array of ``spec.output_shape``.
        """
        raise NotImplementedError(f"{type(self).__name__}.prepare")

    def tolerance_for(self, dtype: str) -> float:
        """The tolerance for ``dtype`` ("float32" or "float64")."""
        return float(self.tolerance[dtype])

    def __repr__(self) -> str:
        return f"<convbench algorithm {self.name!r}>"
