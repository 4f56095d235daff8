"""convbench.bestof: the best of several against the best of several, the choice's
uncertainty included (the winner's curse), on synthetic samples."""

import math

import numpy as np
import pytest

from convbench import groupstats as gs
from convbench.bestof import best_vs_best, best_vs_best_cis, network_best_vs_best, log_relative_replicates

N_A, N_B, N_SAMPLES, SIGMA, N_BOOT = 10, 3, 25, 0.2, 400


def network(seed: int, n_layers: int, b_slower: float = 1.0):
    """10 candidates on side A, 3 on side B, on every layer; lognormal per-call times, every
    candidate of a side equally fast, side B ``b_slower`` times slower."""
    rng = np.random.default_rng(seed)
    return rng, [([rng.lognormal(0, SIGMA, N_SAMPLES) for _ in range(N_A)],
                  [b_slower * rng.lognormal(0, SIGMA, N_SAMPLES) for _ in range(N_B)]) for _ in range(n_layers)]


@pytest.mark.parametrize("mean", ["geometric", "total"])
def test_with_every_candidate_equally_fast_the_network_interval_holds_1(mean):
    """All 13 candidates equally fast on 16 layers, 100 seeds: the network interval holds 1 in
    100 of them (>= 90 asserted). The interval of the two winners alone, given the choice
    (what analysis/peers.py did), held 1 in 79 (geometric) / 81 (total) of the same seeds
    (92 with 8 layers, 97 with 4: the bias is the same on every layer while the noise
    averages out); redoing the choice per resample with a percentile interval held it in 0
    (17 with 8 layers). Not asserted: only the new interval's coverage is."""
    held = 0
    for seed in range(100):
        rng, layers = network(seed, 16)
        ratio, lo, hi = network_best_vs_best(layers, rng, N_BOOT, mean=mean)
        assert lo <= ratio <= hi
        held += lo <= 1.0 <= hi
    assert held >= 90, held


@pytest.mark.parametrize("mean", ["geometric", "total"])
def test_a_side_20_percent_faster_is_told_apart(mean):
    # 100 seeds each way measured: every interval excluded 1 (with 8 layers, 99 of 100 where
    # side A is the slower one: the winner's curse of A's 10 candidates works against telling it)
    for seed in range(20):
        rng, layers = network(1000 + seed, 16, b_slower=1.2)
        ratio, lo, hi = network_best_vs_best(layers, rng, N_BOOT, mean=mean)
        assert 1.0 < lo <= ratio <= hi, (seed, lo, ratio, hi)
        rng, layers = network(2000 + seed, 16, b_slower=1 / 1.2)
        ratio, lo, hi = network_best_vs_best(layers, rng, N_BOOT, mean=mean)
        assert lo <= ratio <= hi < 1.0, (seed, lo, ratio, hi)


def test_one_layer_at_equal_speeds_holds_1_and_is_wider_than_the_winners_alone():
    held, wider = 0, 0
    for seed in range(40):
        rng, [(side_a, side_b)] = network(seed, 1)
        ratio, lo, hi = best_vs_best(side_a, side_b, rng, N_BOOT)
        held += lo <= 1.0 <= hi
        assert ratio == pytest.approx(min(map(np.median, side_b)) / min(map(np.median, side_a)))
        winner_a = min(side_a, key=np.median)
        winner_b = min(side_b, key=np.median)
        _, lo_w, hi_w = best_vs_best([winner_a], [winner_b], rng, N_BOOT)  # given the choice
        wider += lo < lo_w and hi > hi_w
    assert held >= 36 and wider >= 36, (held, wider)


def test_a_clear_winner_gets_the_interval_of_the_winners_alone():
    rng = np.random.default_rng(5)
    fast_a, fast_b = rng.lognormal(0, 0.05, 40), 1.3 * rng.lognormal(0, 0.05, 40)
    slow = [3.0 * rng.lognormal(0, 0.05, 40) for _ in range(6)]
    ratio, lo, hi = best_vs_best([fast_a, *slow], [*slow[:2], fast_b], 1, 2000)
    alone = best_vs_best([fast_a], [fast_b], 1, 2000)
    assert ratio == pytest.approx(alone[0])
    assert (lo, hi) == pytest.approx(alone[1:], rel=0.01)  # candidates 3x slower never win a resample


def test_rounds_resampled_together_and_edge_cases():
    rng = np.random.default_rng(2)
    drift = np.linspace(1.0, 1.5, 30)  # the machine slows down over the rounds, for every candidate alike
    a = [drift * rng.lognormal(0, 0.02, 30) for _ in range(4)]
    b = [1.1 * drift * rng.lognormal(0, 0.02, 30) for _ in range(2)]
    paired = best_vs_best(a, b, 0, 1000, paired=True)
    apart = best_vs_best(a, b, 0, 1000)
    assert paired[1] > 1.0 and paired[2] - paired[1] < apart[2] - apart[1]  # the drift cancels within a round
    with pytest.raises(ValueError, match="one time per round"):
        best_vs_best([np.ones(3)], [np.ones(4)], paired=True)
    assert best_vs_best([np.full(5, 2.0)], [np.full(5, 3.0)]) == (1.5, 1.5, 1.5)
    assert all(math.isnan(v) for v in best_vs_best([], [np.ones(4)]))
    assert all(math.isnan(v) for v in best_vs_best([np.array([np.nan])], [np.ones(4)]))
    # a layer without a side is left out of the network
    one = network_best_vs_best([(a, b)], 0, 500)
    assert network_best_vs_best([([], b), (a, b)], 0, 500)[0] == pytest.approx(one[0])
    with pytest.raises(ValueError, match="mean"):
        network_best_vs_best([(a, b)], mean="arithmetic")


def test_many_layers_at_once_match_one_at_a_time():
    # the vectorised form (what analysis/peers.py calls) gives each layer what one call gives it
    rng, layers = network(9, 5)
    arrays, lay, side = [], [], []
    for code, (sa, sb) in enumerate(layers):
        for x, is_b in [(x, False) for x in sa] + [(x, True) for x in sb]:
            arrays.append(x), lay.append(code), side.append(is_b)
    groups = gs.Groups.from_arrays(np.concatenate(arrays), np.repeat(np.arange(len(arrays)), N_SAMPLES))
    med = np.array([np.median(x) for x in arrays])
    rel = log_relative_replicates(groups, np.arange(len(arrays)), 0.0, 3000, np.random.default_rng(0))
    (ratio, lo, hi), net = best_vs_best_cis(med, lay, side, lambda rows: rel[rows], n_boot=3000,
                                            network=[0, 0, 1, 1, 1], weights=[1, 2, 1, 1, 1])
    for code, (sa, sb) in enumerate(layers):
        one = best_vs_best(sa, sb, code, 3000)
        assert ratio[code] == pytest.approx(one[0])
        assert (lo[code], hi[code]) == pytest.approx(one[1:], rel=0.03)
    best_a = [min(np.median(x) for x in sa) for sa, _ in layers]
    best_b = [min(np.median(x) for x in sb) for _, sb in layers]
    assert net[0][0] == pytest.approx((best_b[0] + 2 * best_b[1]) / (best_a[0] + 2 * best_a[1]))
    assert net[1][0] <= net[0][0] <= net[2][0] and net[2][0] - net[1][0] < hi[0] - lo[0]
