"""benchmarks/kernels_scaling.py: the steps of a call timed at one and two threads."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from convbench import ConvSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import kernels_scaling  # noqa: E402


@pytest.mark.parametrize("algo, steps", [("im2col", ["pack", "gemm"]),
                                         ("fft", ["pack", "transform_in", "gemm", "transform_out",
                                                  "transform_out 2"])])
def test_phase_ratios_gives_every_step_its_share_of_one_thread_and_its_own_speedup(algo, steps):
    spec = ConvSpec(batch=1, in_channels=5, out_channels=6, height=7, width=7, kernel=3, padding=1,
                    layout="nhwc", dtype="float32")
    x, w = spec.random_inputs(0)
    phases = kernels_scaling.phase_ratios(algo, spec, x, w, min_rounds=2, min_time=0.0)
    assert list(phases) == steps  # in call order; a repeated name (two layout copies) numbered
    assert math.isclose(sum(share for share, _ in phases.values()), 1.0)
    assert all(share > 0 and ratio > 0 for share, ratio in phases.values())
