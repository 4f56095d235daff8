"""Layout conversion for algorithms that compute in one layout only.

An algorithm whose natural layout differs from the spec's converts inside the
timed call: that cost is part of its time, as it would be in a framework. ``adapt`` wraps such a
call so it takes and returns arrays in the spec's layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from .phases import PhasedCall

if TYPE_CHECKING:  # pragma: no cover
    from .spec import ConvSpec

Array = np.ndarray

_TO = {
    ("nchw", "nhwc"): (0, 2, 3, 1),
    ("nhwc", "nchw"): (0, 3, 1, 2),
}


def convert(x: Array, src: str, dst: str) -> Array:
    """``x`` (a 4-D activation) from layout ``src`` to ``dst``, C-contiguous (a numba
    copy on the kernels' pool: :mod:`convbench.kernels.layout_copy`)."""
    if src == dst:
        return np.ascontiguousarray(x)
    if (src, dst) not in _TO:
        raise ValueError(f"no conversion from {src!r} to {dst!r}")
    from .kernels.layout_copy import transpose_layout

    return transpose_layout(x, dst)


def conversion_bytes(spec: "ConvSpec", natural: str) -> int:
    """What :func:`adapt` allocates beyond the output when ``spec.layout`` is not
    ``natural``: the converted input and the natural-layout output."""
    return 0 if spec.layout == natural else spec.input_bytes + spec.output_bytes


def adapt(call: Callable[[Array], Array], layout: str, natural: str) -> Callable[[Array], Array]:
    """Wrap ``call`` (natural layout in and out) to take and return ``layout``.

    Returns ``call`` itself when the layouts agree, so nothing is added to
    the time of an algorithm that runs in its own layout. A
    :class:`~convbench.phases.PhasedCall` gets the conversions as steps of
    its own: ``pack`` (the input) in front, ``transform_out`` (the output) behind.
    """
    if layout == natural:
        return call
    if isinstance(call, PhasedCall):
        return PhasedCall((("pack", lambda x: convert(x, layout, natural)), *call.steps,
                           ("transform_out", lambda y: convert(y, natural, layout))))

    def converted(x: Array) -> Array:
        return convert(call(convert(x, layout, natural)), natural, layout)

    converted.__wrapped__ = call  # type: ignore[attr-defined]
    return converted
