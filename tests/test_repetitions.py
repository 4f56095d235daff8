"""Repetitions: the schedule, the two-level bootstrap and the drift measure."""

import math

import numpy as np
import pytest

from convbench.timing import (
    drift, hierarchical_median_ci, repetition_schedule, summarize_repetitions,
)


def test_schedule_measures_every_group_once_per_repetition():
    order = repetition_schedule(7, 3, seed=5)
    assert sorted(order) == [(r, g) for r in range(3) for g in range(7)]
    assert [r for r, _ in order] == sorted(r for r, _ in order)  # pass after pass


def test_schedule_is_shuffled_seeded_and_never_repeats_a_group_back_to_back():
    a = repetition_schedule(30, 4, seed=1)
    assert a == repetition_schedule(30, 4, seed=1)
    assert a != repetition_schedule(30, 4, seed=2)
    assert [g for r, g in a if r == 0] != list(range(30))
    for seed in range(50):
        order = repetition_schedule(3, 5, seed)
        assert all(x[1] != y[1] for x, y in zip(order, order[1:]))


def test_schedule_rejects_no_repetition():
    with pytest.raises(ValueError, match="repeat >= 1"):
        repetition_schedule(3, 0)


def _bursts(means, n=60, sd=0.01, seed=0):
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(m, sd, n) for m in means])
    return values, np.repeat(np.arange(len(means)), n)


def test_ci_covers_the_spread_between_repetitions_not_just_within_a_burst():
    values, reps = _bursts([1.0, 1.2, 1.1])
    lo, hi = hierarchical_median_ci(values, reps)
    # a burst-only interval would be about +-0.3%; the repetitions disagree by 20%
    assert hi - lo > 0.1
    assert lo <= np.median(values) <= hi


def test_ci_of_agreeing_repetitions_is_narrow():
    values, reps = _bursts([1.0, 1.0, 1.0])
    lo, hi = hierarchical_median_ci(values, reps)
    assert hi - lo < 0.02


def test_ci_is_seeded_and_ignores_non_finite_values():
    values, reps = _bursts([1.0, 1.1])
    assert hierarchical_median_ci(values, reps, seed=3) == hierarchical_median_ci(values, reps, seed=3)
    with_nan = np.append(values, np.nan)
    assert hierarchical_median_ci(with_nan, np.append(reps, 0)) == hierarchical_median_ci(values, reps)
    assert all(math.isnan(v) for v in hierarchical_median_ci([1.0], [0]))


def test_ci_handles_repetitions_of_different_sizes():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(1.0, 0.01, 5), rng.normal(2.0, 0.01, 200)])
    reps = np.repeat([0, 1], [5, 200])
    lo, hi = hierarchical_median_ci(values, reps, n_boot=2000)
    # resamples drawing the small repetition twice put the median near 1.0
    assert lo < 1.1 and hi > 1.9


def test_summary_counts_repetitions_that_agree_and_their_spread():
    values, reps = _bursts([1.0, 1.02, 1.5])
    s = summarize_repetitions(values, reps)
    assert s["n_repetitions"] == 3
    assert s["reps_agree"] == 2
    assert s["rep_spread"] == pytest.approx(0.5, abs=0.02)
    one = summarize_repetitions(values[:60], reps[:60])
    assert one["n_repetitions"] == 1 and math.isnan(one["rep_spread"])
    empty = summarize_repetitions([], [])
    assert empty["n_repetitions"] == 0 and math.isnan(empty["median"])


def test_drift_compares_the_end_of_a_burst_with_its_start():
    assert drift([1, 1, 1, 1, 1.25, 1.25, 1.25, 1.25]) == pytest.approx(0.25)
    assert drift([2.0] * 10) == 0.0
    assert math.isnan(drift([1, 2, 3]))
