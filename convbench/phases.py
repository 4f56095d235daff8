"""The phases of a call: a prepared convolution as ordered, named steps.

An algorithm that wants its time explained returns from ``prepare`` a
:class:`PhasedCall` instead of a plain function::

    return convbench.phased(("pack", im2row_copy), ("gemm", multiply))

Calling it runs the steps in order, each on the previous step's result, so
the composition *is* the call: the sweep times the whole call as always, and
in a pass of its own times each step on the intermediate it receives
(``phases.csv``). The vocabulary is shared by every algorithm:

- ``pack``: copying the input into another arrangement (the im2col / im2row
  matrix, a padded or channel-blocked copy, a layout conversion of the input);
- ``transform_in``: a transform of the input (Winograd's B^T d B, forward FFTs);
- ``gemm``: the multiply-accumulate core;
- ``transform_out``: a transform of the result back (Winograd's A^T m A,
  inverse FFTs, a layout conversion of the output);
- ``other``: anything else; a plain callable is one ``other`` step.

A step must not modify the array it is given (the phase pass feeds the same
intermediate to a step many times) and must return what the next step takes;
it may write into buffers it owns. The conformance kit checks that running
the steps one by one gives the call's answer.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

#: The phase names, in the order a call usually passes them.
PHASES = ("pack", "transform_in", "gemm", "transform_out", "other")

Step = tuple[str, Callable[[Any], Any]]


class PhasedCall:
    """A prepared call made of named steps; ``call(x)`` runs them in order.

    ``steps`` is the tuple of ``(phase, function)`` pairs. Two steps may share
    a phase name (a layout conversion and an im2row copy are both ``pack``);
    the phase pass reports them summed under that name.
    """

    def __init__(self, steps: Sequence[Step]) -> None:
        steps = tuple(steps)
        if not steps:
            raise ValueError("a phased call needs at least one step")
        for i, step in enumerate(steps):
            if not (isinstance(step, tuple) and len(step) == 2):
                raise TypeError(f"step {i} of a phased call must be a (phase, function) pair, got {step!r}")
            phase, fn = step
            if phase not in PHASES:
                raise ValueError(f"step {i} of a phased call has phase {phase!r}; the phases are "
                                 f"{', '.join(PHASES)}")
            if not callable(fn):
                raise TypeError(f"step {i} ({phase}) of a phased call is {type(fn).__name__}, not callable")
        self.steps = steps
        self._run = _compose([fn for _, fn in steps])

    def __call__(self, x: Any) -> Any:
        return self._run(x)

    @property
    def phases(self) -> tuple[str, ...]:
        """The phase of each step, in order."""
        return tuple(p for p, _ in self.steps)

    def __repr__(self) -> str:
        return f"<phased call: {' -> '.join(self.phases)}>"


def _compose(fns: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    # closures for the common lengths: no loop in the timed call
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        f, g = fns
        return lambda x: g(f(x))
    if len(fns) == 3:
        f, g, h = fns
        return lambda x: h(g(f(x)))

    def run(x: Any) -> Any:
        for fn in fns:
            x = fn(x)
        return x

    return run


def phased(*steps: Step) -> PhasedCall:
    """A call of ``steps`` (``(phase, function)`` pairs), run in order: see the module docstring."""
    return PhasedCall(steps)


def steps_of(call: Callable[[Any], Any]) -> tuple[Step, ...]:
    """The steps of ``call``: its own if it is a :class:`PhasedCall`, else one ``other`` step."""
    if isinstance(call, PhasedCall):
        return call.steps
    return (("other", call),)


def run_steps(call: Callable[[Any], Any], x: Any) -> list[Any]:
    """Every intermediate of ``call`` on ``x``: the input of each step, then the result."""
    values = [x]
    for _, fn in steps_of(call):
        values.append(fn(values[-1]))
    return values
