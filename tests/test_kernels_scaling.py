"""benchmarks/kernels_scaling.py: the steps of a call timed at one and two threads."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from convbench import ConvSpec, reference

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import kernels_scaling  # noqa: E402


@pytest.mark.parametrize("algo, names", [("im2col", ["pack", "gemm"]),
                                         ("fft", ["pack", "transform_in", "gemm", "transform_out",
                                                  "transform_out 2"])])
def test_call_steps_are_the_calls_phases_each_on_its_own_input_at_both_counts(algo, names):
    spec = ConvSpec(batch=1, in_channels=5, out_channels=6, height=7, width=7, kernel=3, padding=1,
                    layout="nhwc", dtype="float32")
    x, w = spec.random_inputs(0)
    steps = kernels_scaling.call_steps(algo, spec, x, w)
    assert [name for name, _ in steps] == names  # in call order; a repeated name (two layout copies) numbered
    for t in (1, 2):
        value = None
        for _, fns in steps:
            value = fns[t]()
        np.testing.assert_allclose(value, reference(spec, x, w), rtol=1e-3, atol=1e-3)  # the last step: the output


def _scripted(monkeypatch, rounds):
    """warm_times answers each round's call ratio, then its probe's (as (ratio, 1.0) pairs)."""
    answers = iter([(r, 1.0) for pair in rounds for r in pair])
    monkeypatch.setattr(kernels_scaling, "warm_times", lambda calls: next(answers))


def test_only_rounds_in_which_the_machines_sgemm_scaled_count(monkeypatch):
    # quiet rounds (sgemm 2.0x) say 1.8x; busy ones (sgemm 1.2x) say 0.9x
    _scripted(monkeypatch, [(1.8, 2.0), (0.9, 1.2)] * 20)
    med, lo, hi, seen = kernels_scaling.two_vs_one_quiet(lambda: None, object(), min_rounds=6, min_time=0.0)
    assert seen == {"rounds": 11, "quiet_rounds": 6, "sgemm": 2.0, "all_rounds": 1.8}  # stops at 6 quiet
    assert med == lo == hi == 1.8  # the quiet rounds' ratios alone, their extremes the CI


def test_the_phases_come_from_the_same_quiet_rounds_as_the_calls_result(monkeypatch):
    # a round: the call, then its two steps, then the probe; steps as (1-thread time, 2-thread time)
    quiet = [(1.8, 1.0), (3.0, 2.0), (1.0, 0.5), (2.0, 1.0)]  # pack 3 -> 2 (1.5x), gemm 1 -> 0.5 (2x)
    busy = [(0.9, 1.0), (3.0, 3.0), (1.0, 1.0), (1.2, 1.0)]
    answers = iter((quiet + busy) * 20)
    monkeypatch.setattr(kernels_scaling, "warm_times", lambda calls: next(answers))
    steps = [("pack", {}), ("gemm", {})]
    *_, seen = kernels_scaling.two_vs_one_quiet(lambda: None, object(), min_rounds=6, min_time=0.0, steps=steps)
    assert seen["phases"] == {"pack": [0.75, 1.5], "gemm": [0.25, 2.0]}


def test_a_check_short_of_quiet_rounds_reports_every_rounds_ratio(monkeypatch):
    _scripted(monkeypatch, [(1.8, 2.0)] * 2 + [(0.9, 1.2)] * 20)
    med, _, _, seen = kernels_scaling.two_vs_one_quiet(lambda: None, object(), min_rounds=6, min_time=0.0)
    assert seen["quiet_rounds"] == 2 and seen["rounds"] == 12  # MAX_ROUNDS_FACTOR x min_rounds, then given up
    assert seen["quiet_rounds"] < kernels_scaling.MIN_QUIET_ROUNDS and med == 0.9
