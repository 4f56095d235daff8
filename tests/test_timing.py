"""Statistics and stopping rules of convbench.timing, on synthetic samples."""

import math

import numpy as np
import pytest

from convbench.timing import (
    QUICK, Sampler, TimingSettings, ci_rel_halfwidth, iqr, loops_for, median_ci,
    median_ci_ranks, quick, should_stop, summarize,
)


def _binom_cdf(k: int, n: int) -> float:
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


@pytest.mark.parametrize("n, ranks", [(6, (1, 6)), (10, (2, 9)), (20, (6, 15)), (30, (10, 21)), (100, (40, 61))])
def test_median_ci_ranks_match_the_binomial_table(n, ranks):
    assert median_ci_ranks(n, 0.95) == ranks


def test_median_ci_ranks_are_the_tightest_with_enough_coverage():
    for n in range(6, 120):
        lo, hi = median_ci_ranks(n, 0.95)
        assert hi == n - lo + 1
        assert 1 - 2 * _binom_cdf(lo - 1, n) >= 0.95
        assert 1 - 2 * _binom_cdf(lo, n) < 0.95  # one rank tighter is not enough


def test_too_few_samples_have_no_ci():
    assert median_ci_ranks(5, 0.95) is None
    lo, hi = median_ci([1.0, 2.0, 3.0], 0.95)
    assert math.isnan(lo) and math.isnan(hi)
    assert math.isnan(ci_rel_halfwidth([1.0, 2.0, 3.0]))


def test_median_ci_picks_order_statistics_whatever_the_input_order():
    x = np.random.default_rng(1).permutation(np.arange(1.0, 21.0))
    assert median_ci(x) == (6.0, 15.0)


def test_median_ci_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(42)
    true_median = 1.0  # lognormal(0, s) has median exp(0) = 1
    hits = 0
    trials = 2000
    for _ in range(trials):
        lo, hi = median_ci(rng.lognormal(0.0, 0.3, size=25))
        hits += lo <= true_median <= hi
    assert 0.94 <= hits / trials <= 0.995  # exact coverage for n=25 is 0.957


def test_iqr_and_summarize_on_known_samples():
    x = np.arange(1.0, 10.0)  # 1..9
    assert iqr(x) == 4.0  # 7 - 3 with linear interpolation
    s = summarize(x)
    assert s["n_samples"] == 9
    assert s["time_median_s"] == 5.0
    assert s["time_min_s"] == 1.0
    assert s["time_iqr_s"] == 4.0
    assert (s["time_ci_low_s"], s["time_ci_high_s"]) == (2.0, 8.0)  # n=9: ranks 2 and 8
    assert s["time_mean_s"] == 5.0
    assert s["ci_rel_halfwidth"] == pytest.approx(0.6)


def test_summarize_empty_is_all_nan_and_zero_count():
    s = summarize([])
    assert s["n_samples"] == 0 and math.isnan(s["time_median_s"])


def test_should_stop_needs_count_and_time_and_ci():
    settings = TimingSettings(min_samples=10, min_time_s=1.0, max_time_s=5.0, target_ci=0.05)
    tight = [1.0 + 1e-4 * i for i in range(20)]
    wide = list(np.random.default_rng(0).uniform(0.5, 1.5, size=20))
    assert not should_stop(tight[:5], 2.0, settings)  # too few samples
    assert not should_stop(tight, 0.5, settings)  # too little time
    assert should_stop(tight, 2.0, settings)  # count, time and CI all met
    assert not should_stop(wide, 2.0, settings)  # CI too wide
    assert should_stop(wide, 5.0, settings)  # capped by max_time_s
    no_target = TimingSettings(min_samples=10, min_time_s=1.0, max_time_s=5.0, target_ci=None)
    assert should_stop(wide, 2.0, no_target)


def test_sampler_reports_per_call_times():
    sampler = Sampler(TimingSettings(min_samples=2, min_time_s=0.0, target_ci=None), loops=4)
    assert sampler.add(0.4) == pytest.approx(0.1)
    assert not sampler.done
    sampler.add(0.8)
    assert sampler.samples == pytest.approx([0.1, 0.2])
    assert sampler.elapsed_s == pytest.approx(1.2)
    assert sampler.done


def test_loops_for_batches_fast_calls_only():
    assert loops_for(0.01, 1e-3) == 1
    assert loops_for(1e-5, 1e-3) == 100
    assert loops_for(0.0, 1e-3, max_loops=50) == 50
    assert loops_for(1e-5, 0.0) == 1


def test_quick_never_asks_for_more_than_the_original():
    q = quick(TimingSettings(min_samples=2, max_time_s=0.1))
    assert q.min_samples == 2 and q.max_time_s == 0.1 and q.target_ci is None
    assert quick(TimingSettings()).min_samples == QUICK.min_samples


@pytest.mark.parametrize("bad", [dict(min_samples=0), dict(max_time_s=0), dict(target_ci=0), dict(confidence=1.0), dict(warmup=0)])
def test_invalid_settings_are_refused(bad):
    with pytest.raises(ValueError):
        TimingSettings(**bad)
