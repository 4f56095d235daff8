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
    """Sampling rules of one case. The defaults aim at a median whose 95% CI
    is within +-5% on a quiet machine, in about half a second per case."""

    min_samples: int = 20
    min_time_s: float = 0.5
    max_time_s: float = 10.0
    target_ci: float | None = 0.05
    min_sample_time_s: float = 1e-3
    warmup: int = 1
    confidence: float = 0.95

    def __post_init__(self) -> None:
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
    min_samples=3, min_time_s=0.0, max_time_s=0.2, target_ci=None, min_sample_time_s=0.0
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
