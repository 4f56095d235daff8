"""The phase pass: the steps of a prepared call timed inside real runs of the call.

A call declared with :func:`convbench.phased` is a chain of steps (``pack``,
``transform_in``, ``gemm``, ``transform_out``, ``other``). After the
whole-call samples of repetition 0 are taken, the sweep runs each case's
chain again and again (:class:`PhaseTimer`), the group's cases interleaved
round by round as their whole-call samples were (timed back to back, in a
cache of its own, a call ran about 15% faster than its interleaved samples,
so its phases did not add up to them), reading the clock between the
steps, so each step is
timed exactly where it runs in a call: on a fresh intermediate that the
previous step just wrote (a step timed alone in a loop on one stored
intermediate keeps its own buffers in cache, which flattered the short
Winograd transforms by 10-20%). The rules are those of the whole call's
samples: a sample is ``loops`` runs of the chain, so it lasts
``min_sample_time_s``; at least ``min_samples`` samples and ``min_time_s``
seconds. Cold (``before_each`` evicts the caches), every run is one cold
call: the eviction, then the timed chain.

The phases are checked against the whole call's median of the same
repetition (the interleaved samples, taken minutes apart from nothing):
their medians should add up to it (``phase_sum_ratio``; a case more than
:data:`ADD_UP` away is flagged, ``phases_add_up`` false). The pass costs
about one more repetition's sampling of the case.

Steps that share a phase name (a layout conversion and an im2row copy are
both ``pack``) are reported as one phase: per sample, the sum of their times.
An algorithm that does not split its call is one ``other`` phase, whose
share of the whole call is then about 1.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from ..phases import steps_of
from ..results.schema import phase_row
from ..timing import TimingSettings, loops_for, median_ci, should_stop

#: Phases whose medians sum to within this relative distance of the whole call add up.
ADD_UP = 0.15


class PhaseTimer:
    """The phase samples of one prepared call: each :meth:`sample` is ``loops`` runs of
    the chain with the clock read between its steps (see the module docstring)."""

    def __init__(self, call: Callable[[Any], Any], x: np.ndarray, timing: TimingSettings,
                 loops: int | None = None, before_each: Callable[[], None] | None = None) -> None:
        self.steps, self.x, self.timing, self.before_each = steps_of(call), x, timing, before_each
        self.fns = [fn for _, fn in self.steps]
        self.last: Any = None
        warm = [0.0] * len(self.fns)
        self._chain(warm)  # a warm-up run, which also calibrates the loops
        self.loops = 1 if before_each is not None else (
            loops if loops is not None else loops_for(sum(warm), timing.min_sample_time_s))
        self.times: list[list[float]] = [[] for _ in self.fns]
        self.elapsed = 0.0

    def _chain(self, sums: list[float]) -> None:
        perf = time.perf_counter
        v = self.x
        t0 = perf()
        for i, fn in enumerate(self.fns):
            v = fn(v)
            t1 = perf()
            sums[i] += t1 - t0
            t0 = t1
        # the previous output lives until now, as ``y = call(x)`` keeps it in the sampling
        # loop: a run that could reuse its memory (still in cache) would be flattered
        self.last = v

    def sample(self) -> None:
        t_start = time.perf_counter()
        if self.before_each is not None:
            self.before_each()
        sums = [0.0] * len(self.fns)
        for _ in range(self.loops):
            self._chain(sums)
        self.elapsed += time.perf_counter() - t_start
        for i, total in enumerate(sums):
            self.times[i].append(total / self.loops)

    @property
    def done(self) -> bool:
        return should_stop(self.times[0], self.elapsed, self.timing)

    def result(self, whole: Sequence[float] | None = None) -> dict[str, Any]:
        """``{"whole": (median, lo, hi, n), "phases": [(phase, steps, median, lo, hi, n), ...]
        in call order, "sum_ratio": sum of phase medians / whole median, "add_up": bool}``;
        ``whole``: the whole call's samples to check against (default: the runs' own totals)."""
        own = np.sum(self.times, axis=0)
        reference = np.asarray(whole if whole is not None and len(whole) else own, dtype=float)
        by_phase: dict[str, list[int]] = {}
        for i, (phase, _) in enumerate(self.steps):
            by_phase.setdefault(phase, []).append(i)
        phases = []
        for phase, idx in by_phase.items():
            per_sample = np.sum([self.times[i] for i in idx], axis=0)
            lo, hi = median_ci(list(per_sample), self.timing.confidence)
            phases.append((phase, len(idx), float(np.median(per_sample)), lo, hi, len(per_sample)))
        w_lo, w_hi = median_ci(list(reference), self.timing.confidence)
        w_med = float(np.median(reference))
        ratio = sum(p[2] for p in phases) / w_med if w_med > 0 else float("nan")
        return {"whole": (w_med, w_lo, w_hi, len(reference)), "phases": phases, "sum_ratio": ratio,
                "add_up": bool(abs(ratio - 1) <= ADD_UP)}


def time_phases(call: Callable[[Any], Any], x: np.ndarray, timing: TimingSettings,
                before_each: Callable[[], None] | None = None,
                whole: Sequence[float] | None = None) -> dict[str, Any]:
    """One call's phases, timed alone (see :class:`PhaseTimer` for the rules and the result)."""
    timer = PhaseTimer(call, x, timing, before_each=before_each)
    while True:
        timer.sample()
        if timer.done:
            return timer.result(whole)


def phase_rows(case: Any, got: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A :meth:`PhaseTimer.result` as a case's ``phases.csv`` rows and its summary columns
    ``phase_sum_ratio`` and ``phases_add_up``."""
    median = got["whole"][0]
    rows = [phase_row(case_id=case.case_id, layer=case.layer.name, algorithm=case.algorithm,
                      layout=case.spec.layout, dtype=case.spec.dtype, threads=case.threads, cache=case.cache,
                      phase=phase, steps=steps, time_median_s=med, time_ci_low_s=lo, time_ci_high_s=hi,
                      share=med / median if median > 0 else float("nan"), n_samples=n)
            for phase, steps, med, lo, hi, n in got["phases"]]
    return rows, {"phase_sum_ratio": got["sum_ratio"], "phases_add_up": got["add_up"]}
