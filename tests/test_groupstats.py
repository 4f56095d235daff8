"""convbench.groupstats: all-cases-at-once statistics against the per-case code they replace."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from convbench import groupstats as gs
from convbench.results import read_results

PAPER = Path(__file__).parent.parent / "results" / "paper"
#: ratio_table (figures, report) and select still resample per-call samples; compare's verdicts
#: (issue 10) use the summaries' repetition CIs and need none of this.


def per_case_ratio_ci(num, den, confidence=0.95, n_boot=2000, seed=0):
    """The oracle: the per-case bootstrap convbench used before groupstats (resample, median, quantile)."""
    a, b = np.asarray(num, float), np.asarray(den, float)
    rng = np.random.default_rng(seed)
    ma = np.median(a[rng.integers(0, a.size, (n_boot, a.size))], axis=1)
    mb = np.median(b[rng.integers(0, b.size, (n_boot, b.size))], axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(ma / mb, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 9, 12])
def test_bootstrap_medians_have_the_distribution_of_resampled_medians(n):
    rng = np.random.default_rng(n)
    x = rng.lognormal(size=n)
    g = gs.Groups.from_arrays(x, ["case"] * n)
    fast = gs.median_replicates(g, np.array([0]), 100_000, np.random.default_rng(0))[0]
    slow = np.median(x[rng.integers(0, n, (100_000, n))], axis=1)
    values = np.unique(np.concatenate([fast, slow]))
    p_fast = np.array([(fast == v).mean() for v in values])
    p_slow = np.array([(slow == v).mean() for v in values])
    assert np.abs(p_fast - p_slow).max() < 0.01  # standard error <= 0.0016 per value


@pytest.fixture(scope="module")
def paper():
    return read_results(PAPER)


def test_ratio_cis_match_the_per_case_bootstrap_on_the_shipped_run(paper):
    g = gs.Groups.from_arrays(paper.samples["time_s"], paper.samples["case_id"])
    big = np.flatnonzero(g.sizes >= 2)
    num, den = big[1::9][:40], big[0::9][:40]
    lo, hi = gs.ratio_cis(g, num, g, den, seed=3)
    diffs = []
    for i, (a, b) in enumerate(zip(num, den)):
        va = g.values[g.offsets[a]:g.offsets[a] + g.sizes[a]]
        vb = g.values[g.offsets[b]:g.offsets[b] + g.sizes[b]]
        olo, ohi = per_case_ratio_ci(va, vb, seed=i)
        width = ohi - olo
        diffs += [abs(lo[i] - olo) / width, abs(hi[i] - ohi) / width]
    # the two differ only by Monte Carlo error of a 2.5% quantile of 2000 resamples
    assert np.median(diffs) < 0.06 and max(diffs) < 0.35
    lo2, hi2 = gs.ratio_cis(g, num, g, den, seed=3)
    assert np.array_equal(lo, lo2) and np.array_equal(hi, hi2)  # seeded


def test_median_cis_cover_the_median_and_need_two_samples():
    rng = np.random.default_rng(2)
    values = np.r_[rng.normal(10, 1, 101), rng.normal(5, 1, 60), [7.0]]
    keys = ["a"] * 101 + ["b"] * 60 + ["c"]
    g = gs.Groups.from_arrays(values, keys)
    lo, hi = gs.median_cis(g)
    assert lo[0] < 10 < hi[0] and lo[1] < 5 < hi[1] and hi[0] - lo[0] < 1.0
    assert math.isnan(lo[2]) and list(g.keys) == ["a", "b", "c"]


def test_geomean_cis_per_group():
    values = [2.0, 8.0, 4.0, 1.0, 1.0, 3.0, -1.0, float("nan")]
    keys = ["x", "x", "x", "y", "y", "z", "z", "z"]
    names, gm, lo, hi = gs.geomean_cis(values, keys, seed=1)
    assert list(names) == ["x", "y", "z"]
    assert gm[0] == pytest.approx(4.0) and gm[1] == pytest.approx(1.0) and gm[2] == pytest.approx(3.0)
    assert 2.0 <= lo[0] <= 4.0 <= hi[0] <= 8.0 and lo[1] == hi[1] == 1.0
    assert math.isnan(lo[2])  # one positive value: no interval
    again = gs.geomean_cis(values, keys, seed=1)
    assert np.array_equal(lo, again[2], equal_nan=True)


def test_groups_drop_non_finite_values_and_find_rows():
    g = gs.Groups.from_arrays([3.0, np.nan, 1.0, 2.0, np.inf], pd.Series(["p", "p", "p", "q", "q"]))
    assert list(g.sizes) == [2, 1] and list(g.values[:2]) == [1.0, 3.0]
    assert list(g.rows(["q", "nope", "p"])) == [1, -1, 0]
