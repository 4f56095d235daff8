"""How one case is measured: sampling rules and the statistics of its samples.

Everything here is a pure function of numbers (or a tiny state object) so it
can be tested on synthetic samples; sweep/measure owns the clock and the calls.

A case is measured as: one warm-up call (its time is ``compile_s``), then
samples until *all* of these hold, or until ``max_time_s`` of sampling is
spent (whichever comes first):

- at least ``min_samples`` samples,
- at least ``min_time_s`` seconds of sampling,
- if ``target_ci`` is set, the 95% confidence interval of the median is
  narrower than ``+-target_ci`` of the median.

A sample is ``loops`` back-to-back calls timed together (``loops`` is chosen
from a calibration call so one sample lasts at least ``min_sample_time_s``);
its time is reported per call. Very fast calls are so batched instead of
being dominated by the timer's own overhead.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class TimingSettings:
    """Sampling rules of one case.

    ``repeat`` repetitions, each a burst in a fresh worker process at another
    moment of the sweep, each burst following the other rules. The defaults
    (5 x at least 10 samples and 0.1 s) spend about what one 0.5 s burst did,
    spread where the machine's drift shows: the variance between bursts is
    the one that matters on a shared machine, so no burst-level CI target.
    Five, not three: on a 2-vCPU VM a sub-millisecond case's repetitions
    differed by 20-30% (each process's own memory layout and core), and with
    three, 11% of speedups moved more than 10% between two runs of one sweep."""

    min_samples: int = 10
    min_time_s: float = 0.1
    max_time_s: float = 5.0
    target_ci: float | None = None
    min_sample_time_s: float = 1e-3
    warmup: int = 1
    confidence: float = 0.95
    repeat: int = 5

    def __post_init__(self) -> None:
        if self.repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {self.repeat}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be >= 1, got {self.min_samples}")
        if self.max_time_s <= 0 or self.min_time_s < 0:
            raise ValueError("max_time_s must be > 0 and min_time_s >= 0")
        if self.target_ci is not None and self.target_ci <= 0:
            raise ValueError(f"target_ci must be > 0 or None, got {self.target_ci}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.warmup < 1:
            raise ValueError(f"warmup must be >= 1 (it yields compile_s), got {self.warmup}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: ``--quick``: a smoke run that checks everything runs, not a measurement.
QUICK = TimingSettings(
    min_samples=3, min_time_s=0.0, max_time_s=0.2, target_ci=None, min_sample_time_s=0.0, repeat=1
)


def quick(settings: TimingSettings) -> TimingSettings:
    """``settings`` cut down for ``--quick`` (never slower than the original)."""
    return replace(
        QUICK,
        min_samples=min(settings.min_samples, QUICK.min_samples),
        max_time_s=min(settings.max_time_s, QUICK.max_time_s),
        confidence=settings.confidence,
    )


def loops_for(call_time_s: float, min_sample_time_s: float, max_loops: int = 10_000) -> int:
    """How many calls make one sample last at least ``min_sample_time_s``."""
    if min_sample_time_s <= 0 or call_time_s >= min_sample_time_s:
        return 1
    if call_time_s <= 0:
        return max_loops
    return int(min(max_loops, math.ceil(min_sample_time_s / call_time_s)))


# -- statistics -------------------------------------------------------------


@lru_cache(maxsize=4096)
def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int] | None:
    """1-based ranks ``(l, u)`` of the order statistics bounding the median.

    Distribution-free: the number of samples below the true median is
    Binomial(n, 1/2), so ``[x_(l), x_(u)]`` with ``u = n - l + 1`` covers the
    median with probability ``1 - 2 P(B <= l - 1)``. ``l`` is the largest rank
    whose coverage is still ``>= confidence``. ``None`` when even
    ``[min, max]`` covers less than ``confidence`` (n < 6 for 95%).
    """
    if n < 1:
        return None
    alpha = 1.0 - confidence
    # cumulative P(B <= k) for B ~ Bin(n, 1/2), computed exactly in integers
    total = 2**n
    cdf = 0
    best = None
    for k in range(0, (n + 1) // 2):
        cdf += math.comb(n, k)
        # rank l = k + 1 has coverage 1 - 2 * P(B <= k)
        if 2 * cdf / total <= alpha:
            best = k + 1
        else:
            break
    if best is None:
        return None
    return best, n - best + 1


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """The ``confidence`` CI of the median by order statistics; NaNs when too few samples."""
    x = np.sort(np.asarray(samples, dtype=float))
    ranks = median_ci_ranks(len(x), confidence)
    if ranks is None:
        return math.nan, math.nan
    lo, hi = ranks
    return float(x[lo - 1]), float(x[hi - 1])


def iqr(samples: Sequence[float]) -> float:
    """Interquartile range (linear interpolation, NumPy's default)."""
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        return math.nan
    q1, q3 = np.percentile(x, [25, 75])
    return float(q3 - q1)


def ci_rel_halfwidth(samples: Sequence[float], confidence: float = 0.95) -> float:
    """Half the CI width relative to the median (0.05 means +-5%); NaN if undefined."""
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        return math.nan
    lo, hi = median_ci(x, confidence)
    med = float(np.median(x))
    if math.isnan(lo) or med <= 0:
        return math.nan
    return (hi - lo) / 2.0 / med


def geomean(values: Any) -> float:
    """Geometric mean of the finite, positive values (ratios, speedups); NaN when there are none."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0], dtype=float)
    return float(np.exp(np.log(v).mean())) if v.size else math.nan


def summarize(samples: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """Headline statistics of per-call times, keyed as in ``summary.csv``."""
    x = np.asarray(samples, dtype=float)
    n = int(x.size)
    if n == 0:
        nan = math.nan
        return {
            "n_samples": 0, "time_median_s": nan, "time_iqr_s": nan, "time_min_s": nan,
            "time_ci_low_s": nan, "time_ci_high_s": nan, "time_mean_s": nan,
            "time_std_s": nan, "ci_rel_halfwidth": nan,
        }
    lo, hi = median_ci(x, confidence)
    return {
        "n_samples": n,
        "time_median_s": float(np.median(x)),
        "time_iqr_s": iqr(x),
        "time_min_s": float(x.min()),
        "time_ci_low_s": lo,
        "time_ci_high_s": hi,
        "time_mean_s": float(x.mean()),
        "time_std_s": float(x.std(ddof=1)) if n > 1 else math.nan,
        "ci_rel_halfwidth": ci_rel_halfwidth(x, confidence),
    }


def should_stop(samples: Sequence[float], elapsed_s: float, settings: TimingSettings) -> bool:
    """Whether a case has enough samples (see the module docstring)."""
    if elapsed_s >= settings.max_time_s:
        return True
    if len(samples) < settings.min_samples or elapsed_s < settings.min_time_s:
        return False
    if settings.target_ci is None:
        return True
    width = ci_rel_halfwidth(samples, settings.confidence)
    return not math.isnan(width) and width <= settings.target_ci


@dataclass
class Sampler:
    """The samples of one case as they arrive (per-call seconds)."""

    settings: TimingSettings
    loops: int = 1

    def __post_init__(self) -> None:
        self.samples: list[float] = []
        self.elapsed_s = 0.0

    def add(self, sample_total_s: float) -> float:
        """Record one sample of ``loops`` calls; returns its per-call time."""
        self.elapsed_s += sample_total_s
        per_call = sample_total_s / self.loops
        self.samples.append(per_call)
        return per_call

    @property
    def done(self) -> bool:
        return should_stop(self.samples, self.elapsed_s, self.settings)


# -- repetitions: the variance between bursts, processes and minutes ---------------
#
# One burst of samples says little about the next: on a shared VM a core's
# speed moves over seconds, and a fresh process lands on other memory. So a
# case is measured in several *repetitions* (each a fresh worker process, at a
# different time of the sweep), and its interval comes from a two-level
# bootstrap: resample the repetitions, then the samples within each. With one
# repetition that is an ordinary bootstrap of the burst, as narrow as a burst is.

#: A repetition "agrees" with the pooled median within this relative distance.
AGREE_WITHIN = 0.10
N_BOOT_REPS = 500


def repetition_schedule(n_groups: int, repeat: int, seed: int = 0) -> list[tuple[int, int]]:
    """The order in which ``(repetition, group)`` pairs are measured.

    Every group once per pass, each pass shuffled (seeded), so a group's
    repetitions are spread over the sweep instead of back to back; where one
    pass ends with the group the next begins with, the next pass's first two
    swap, so no group is measured twice in a row.
    """
    if n_groups < 0 or repeat < 1:
        raise ValueError(f"need n_groups >= 0 and repeat >= 1, got {n_groups} and {repeat}")
    rng = np.random.default_rng(seed)
    order: list[tuple[int, int]] = []
    for rep in range(repeat):
        perm = [int(g) for g in rng.permutation(n_groups)]
        if order and n_groups > 1 and perm[0] == order[-1][1]:
            perm[0], perm[1] = perm[1], perm[0]
        order.extend((rep, g) for g in perm)
    return order


def _padded(values: np.ndarray, reps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values as a (repetitions x max count) matrix padded with NaN, and the counts."""
    labels, inverse, counts = np.unique(reps, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    col = np.arange(values.size) - np.repeat(starts, counts)
    table = np.full((labels.size, int(counts.max())), np.nan)
    table[inverse[order], col] = values[order]
    return table, counts


def hierarchical_median_ci(
    values: Sequence[float], reps: Sequence[Any], confidence: float = 0.95,
    n_boot: int = N_BOOT_REPS, seed: int = 0,
) -> tuple[float, float]:
    """CI of the pooled median, by resampling repetitions then samples within them.

    Seeded, so the same samples give the same interval. NaNs when there are
    fewer than 2 values.
    """
    v = np.asarray(values, dtype=float)
    r = np.asarray(reps)
    keep = np.isfinite(v)
    v, r = v[keep], r[keep]
    if v.size < 2:
        return math.nan, math.nan
    table, counts = _padded(v, r)
    n_reps, width = table.shape
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, n_reps, size=(n_boot, n_reps))            # which repetitions
    within = rng.random((n_boot, n_reps, width))                      # which samples in each
    idx = np.minimum((within * counts[pick][..., None]).astype(np.int64), width - 1)
    drawn = table[pick[..., None], idx]
    drawn[np.arange(width) >= counts[pick][..., None]] = np.inf      # a repetition keeps its own count
    # the median of each resample's finite values: they sort before the +inf padding
    ordered = np.sort(drawn.reshape(n_boot, -1), axis=1)
    n = counts[pick].sum(axis=1)
    rows = np.arange(n_boot)
    medians = (ordered[rows, (n - 1) // 2] + ordered[rows, n // 2]) / 2.0
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(medians, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def summarize_repetitions(
    values: Sequence[float], reps: Sequence[Any], confidence: float = 0.95,
    agree_within: float = AGREE_WITHIN, seed: int = 0,
) -> dict[str, float]:
    """The pooled median of ``values`` over repetitions, its CI and their agreement.

    ``median``, ``ci_low``, ``ci_high`` (two-level bootstrap), ``n_repetitions``,
    ``reps_agree`` (repetitions whose own median is within ``agree_within`` of
    the pooled one) and ``rep_spread`` (max / min of the repetitions' medians,
    minus 1: 0.0 when they coincide, NaN with one repetition).
    """
    v = np.asarray(values, dtype=float)
    r = np.asarray(reps)
    keep = np.isfinite(v)
    v, r = v[keep], r[keep]
    if v.size == 0:
        return {"median": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "n_repetitions": 0, "reps_agree": 0, "rep_spread": math.nan}
    med = float(np.median(v))
    rep_meds = np.array([np.median(v[r == k]) for k in np.unique(r)])
    lo, hi = hierarchical_median_ci(v, r, confidence, seed=seed)
    agree = int(np.sum(np.abs(rep_meds / med - 1.0) <= agree_within)) if med > 0 else 0
    spread = float(rep_meds.max() / rep_meds.min() - 1.0) if rep_meds.size > 1 and rep_meds.min() > 0 else math.nan
    return {"median": med, "ci_low": lo, "ci_high": hi, "n_repetitions": int(rep_meds.size),
            "reps_agree": agree, "rep_spread": spread}


def drift(times: Sequence[float]) -> float:
    """How far a steady series moved during a burst: the median of its second
    half over that of its first, minus 1 (0.25: 25% slower by the end); NaN
    with fewer than 4 values. Used on the reference kernel timed in every round."""
    x = np.asarray(times, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 4:
        return math.nan
    half = x.size // 2
    return float(np.median(x[half:]) / np.median(x[:half]) - 1.0)
