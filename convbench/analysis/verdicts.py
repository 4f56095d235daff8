"""When is a change a change? The verdict rules of ``convbench compare``.

Two runs of the same sweep on the same machine differ: the machine drifts
between bursts, processes and minutes. A change counts only when

- its confidence interval lies entirely beyond ``+-threshold`` (10% by
  default, asv's factor): "B is at least 10% slower", not "B differs", and
- it is larger than the spread between the repetitions of *both* runs: a
  change no bigger than a run's disagreement with itself is not evidence.

The interval of a ratio ``B/A`` combines the two medians' intervals on a log
scale (half-widths added in quadrature). Each median's interval comes from
the bootstrap over repetitions (:func:`convbench.timing.hierarchical_median_ci`),
so it already carries the between-repetition variance; a test on the
within-burst samples (Mann-Whitney) would turn drift into "significance".

Everything here works on whole columns at once (numpy arrays), so comparing
runs of tens of thousands of cases costs milliseconds.
"""

from __future__ import annotations

import numpy as np

#: Relative change below which a case is "same" whatever its interval says.
DEFAULT_THRESHOLD = 0.10


def ratio_ci(
    med_a: np.ndarray, lo_a: np.ndarray, hi_a: np.ndarray,
    med_b: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``B/A`` and its interval from each side's median and interval (NaN where one is missing)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(med_b, float) / np.asarray(med_a, float)
        hw_a = (np.log(np.asarray(hi_a, float)) - np.log(np.asarray(lo_a, float))) / 2.0
        hw_b = (np.log(np.asarray(hi_b, float)) - np.log(np.asarray(lo_b, float))) / 2.0
        hw = np.sqrt(hw_a**2 + hw_b**2)
        return ratio, ratio * np.exp(-hw), ratio * np.exp(hw)


def judge(
    ratio: np.ndarray, ci_low: np.ndarray, ci_high: np.ndarray,
    spread_a: np.ndarray, spread_b: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
) -> np.ndarray:
    """``"slower"``, ``"faster"`` or ``"same"`` per case, for ``ratio = B/A`` of times.

    A missing spread (one repetition) does not block a verdict; a missing
    interval does (``"same"``: nothing shows a change).
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    ratio = np.asarray(ratio, float)
    spread = np.fmax(np.nan_to_num(np.asarray(spread_a, float), nan=0.0),
                     np.nan_to_num(np.asarray(spread_b, float), nan=0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        slower = (np.asarray(ci_low, float) > 1.0 + threshold) & (ratio - 1.0 > spread)
        faster = (np.asarray(ci_high, float) < 1.0 / (1.0 + threshold)) & (1.0 / ratio - 1.0 > spread)
    return np.where(slower, "slower", np.where(faster, "faster", "same"))


def speed_gap(rate_a: float | None, rate_b: float | None) -> float | None:
    """``B/A - 1`` of two machine-speed readings (calibrations); None if either is missing."""
    if not rate_a or not rate_b:
        return None
    return float(rate_b) / float(rate_a) - 1.0
