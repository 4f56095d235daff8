"""compare's verdict rules on synthetic intervals."""

import numpy as np
import pytest

from convbench.analysis.verdicts import judge, ratio_ci, speed_gap


def test_ratio_interval_adds_both_sides_uncertainty():
    r, lo, hi = ratio_ci(np.array([1.0]), np.array([0.9]), np.array([1.1]),
                         np.array([2.0]), np.array([1.8]), np.array([2.2]))
    assert r[0] == 2.0
    assert lo[0] < 1.8 and hi[0] > 2.2  # wider than either side's alone
    assert np.log(hi[0] / r[0]) == pytest.approx(np.log(r[0] / lo[0]))


def test_a_change_counts_only_beyond_the_threshold_and_the_spread():
    ratio = np.array([1.30, 1.30, 1.08, 0.70, 1.30, 1.30])
    lo = np.array([1.20, 1.05, 1.02, 0.65, 1.20, 1.20])
    hi = np.array([1.40, 1.50, 1.12, 0.75, 1.40, 1.40])
    sa = np.array([0.05, 0.05, 0.01, 0.05, 0.40, np.nan])
    sb = np.array([0.05, 0.05, 0.01, 0.05, 0.05, np.nan])
    got = judge(ratio, lo, hi, sa, sb, threshold=0.10)
    assert list(got) == [
        "slower",  # clearly beyond 10% and beyond both runs' spreads
        "same",    # its interval reaches below +10%
        "same",    # significant but smaller than the threshold
        "faster",
        "same",    # run A disagrees with itself by 40%: a 30% change is no evidence
        "slower",  # one repetition: no spread to weigh against
    ]


def test_missing_intervals_never_make_a_verdict():
    got = judge(np.array([2.0]), np.array([np.nan]), np.array([np.nan]), np.array([0.0]), np.array([0.0]))
    assert list(got) == ["same"]


def test_threshold_must_not_be_negative():
    with pytest.raises(ValueError, match="threshold"):
        judge(np.array([1.0]), np.array([1.0]), np.array([1.0]), np.array([0.0]), np.array([0.0]), -0.1)


def test_speed_gap_between_calibrations():
    assert speed_gap(50.0, 100.0) == pytest.approx(1.0)
    assert speed_gap(None, 100.0) is None
