"""convbench.groupstats: all-cases-at-once statistics against the per-case code they replace."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu

from convbench import groupstats as gs
from convbench.compare import compare_runs
from convbench.results import read_results

PAPER = Path(__file__).parent.parent / "results" / "paper"


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


def test_compare_verdicts_are_those_of_the_per_case_code_on_the_shipped_run(paper):
    b = read_results(PAPER)
    slow = b.summary["case_id"].iloc[::3]  # a third of the cases 4-12% slower, the rest unchanged
    factor = 1.04 + 0.08 * np.random.default_rng(0).random(len(b.samples))
    hit = b.samples["case_id"].isin(set(slow)).to_numpy()
    b.samples.loc[hit, "time_s"] = b.samples.loc[hit, "time_s"] * factor[hit]
    med = b.samples.groupby("case_id")["time_s"].median()
    b.summary["time_median_s"] = b.summary["case_id"].map(med).fillna(b.summary["time_median_s"])
    table = compare_runs(paper, b).table
    by_a = {k: v.to_numpy() for k, v in paper.samples.groupby("case_id")["time_s"]}
    by_b = {k: v.to_numpy() for k, v in b.samples.groupby("case_id")["time_s"]}
    ids = paper.summary.set_index(["layer", "algorithm", "layout", "dtype", "threads"])["case_id"]
    expected = []
    for r in table.to_dict("records"):
        if r["status_a"] != "ok" or r["status_b"] != "ok":
            expected.append(r["verdict"])
            continue
        cid = ids[(r["layer"], r["algorithm"], r["layout"], r["dtype"], r["threads"])]
        xa, xb = by_a.get(cid), by_b.get(cid)
        if xa is None or xa.size < 2 or xb.size < 2:
            expected.append("same")
            continue
        p = mannwhitneyu(xa, xb, alternative="two-sided").pvalue if np.ptp(np.r_[xa, xb]) else 1.0
        ratio = r["ratio"]
        expected.append(("slower" if ratio > 1 else "faster") if p < 0.05 and abs(ratio - 1) > 0.05 else "same")
        assert r["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert list(table["verdict"]) == expected
    assert (table["verdict"] == "slower").sum() > 20  # the test has teeth


def test_mann_whitney_ps_equal_scipy_including_ties_and_small_samples():
    rng = np.random.default_rng(5)
    groups_a, groups_b, ks = [], [], []
    for k, (n1, n2) in enumerate([(3, 5), (8, 8), (9, 12), (30, 40), (4, 50), (6, 6), (20, 20)]):
        a = np.round(rng.normal(size=n1), 1 if k % 2 else 6)  # odd k: ties
        b = np.round(rng.normal(0.5, size=n2), 1 if k % 2 else 6)
        groups_a.append(a)
        groups_b.append(b)
        ks.append(k)
    ga = gs.Groups.from_arrays(np.concatenate(groups_a), np.repeat(ks, [len(a) for a in groups_a]))
    gb = gs.Groups.from_arrays(np.concatenate(groups_b), np.repeat(ks, [len(b) for b in groups_b]))
    p = gs.mann_whitney_ps(ga, np.arange(len(ks)), gb, np.arange(len(ks)))
    want = [mannwhitneyu(a, b, alternative="two-sided").pvalue for a, b in zip(groups_a, groups_b)]
    assert np.allclose(p, want, rtol=1e-12, atol=0)
    same = gs.Groups.from_arrays([1.0, 1.0, 1.0], [0, 0, 0])
    assert gs.mann_whitney_ps(same, [0], same, [0])[0] == 1.0
    assert math.isnan(gs.mann_whitney_ps(same, [-1], same, [0])[0])


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
