"""Ratios of timings with confidence intervals, and run-against-run comparison.

Two uses share the statistics here:

- :func:`ratio_table` — within one run, each algorithm's speed against a
  reference algorithm on the same layer (the speedup figure, the reproduce
  report);
- :func:`compare_runs` — two runs of the same cases (``convbench compare A B``):
  per case the ratio B/A of the medians (times in units of the reference
  kernel by default, so machine speed divides out), its confidence interval
  from the two medians' intervals (which carry the between-repetition
  spread), and a verdict by the rules of :mod:`.verdicts`.

In :func:`ratio_table`, confidence intervals of a ratio of medians are a
seeded percentile bootstrap over the per-call samples of both cases
(resampled independently), so they are reproducible. Where a case has too
few samples (< 2), the interval falls back to the ratio of the summary's
median CI bounds (conservative: the widest ratio the two intervals allow).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..results.schema import CASE_KEYS, VARIANT_KEYS
from .verdicts import DEFAULT_THRESHOLD, judge, ratio_ci, speed_gap
#: Shape columns that must agree for two cases of the same key to be compared.
SHAPE_COLUMNS = [
    "batch", "in_channels", "out_channels", "height", "width", "kernel_h", "kernel_w",
    "stride_h", "stride_w", "pad_top", "pad_bottom", "pad_left", "pad_right",
    "dilation_h", "dilation_w", "groups",
]

N_BOOT = 2000


class CompareError(Exception):
    """Two runs cannot be compared; the message says which cases differ."""


# -- statistics ---------------------------------------------------------------------


def bootstrap_ratio_ci(
    num: Sequence[float], den: Sequence[float], confidence: float = 0.95,
    n_boot: int = N_BOOT, seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of ``median(num) / median(den)`` (seeded).

    ``num`` and ``den`` are resampled independently. NaNs when either side has
    fewer than 2 samples.
    """
    a = np.asarray(num, dtype=float)
    b = np.asarray(den, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    ma = np.median(a[rng.integers(0, a.size, (n_boot, a.size))], axis=1)
    mb = np.median(b[rng.integers(0, b.size, (n_boot, b.size))], axis=1)
    ratios = ma / mb
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(ratios, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def ratio_bounds_from_ci(
    num_low: float, num_high: float, den_low: float, den_high: float
) -> tuple[float, float]:
    """The widest ratio two median CIs allow: ``(num_low/den_high, num_high/den_low)``."""
    vals = [num_low, num_high, den_low, den_high]
    if any(v is None or not np.isfinite(v) or v <= 0 for v in vals):
        return math.nan, math.nan
    return num_low / den_high, num_high / den_low


def samples_by_case(samples: Any) -> dict[str, np.ndarray]:
    """``case_id -> per-call times`` from a samples frame (empty dict for None)."""
    if samples is None or len(samples) == 0:
        return {}
    return {str(k): g.to_numpy(dtype=float) for k, g in samples.groupby("case_id", sort=False)["time_s"]}


def _ratio_ci(
    num_row: Mapping[str, Any], den_row: Mapping[str, Any], by_case: Mapping[str, np.ndarray],
    confidence: float, seed: int,
) -> tuple[float, float, str]:
    a = by_case.get(str(num_row.get("case_id")))
    b = by_case.get(str(den_row.get("case_id")))
    if a is not None and b is not None and a.size >= 2 and b.size >= 2:
        lo, hi = bootstrap_ratio_ci(a, b, confidence, seed=seed)
        return lo, hi, "bootstrap"
    lo, hi = ratio_bounds_from_ci(
        num_row.get("time_ci_low_s"), num_row.get("time_ci_high_s"),
        den_row.get("time_ci_low_s"), den_row.get("time_ci_high_s"),
    )
    return lo, hi, "summary-ci"


# -- within one run: speed against a reference algorithm ------------------------------


def ratio_table(
    summary: Any, samples: Any = None, reference: str = "im2col",
    algorithms: Sequence[str] | None = None, confidence: float = 0.95, seed: int = 0,
) -> Any:
    """Speedup of each case over ``reference`` on the same layer variant.

    One row per case of ``summary`` (restricted to ``algorithms`` if given)
    with ``speedup = median(reference) / median(case)`` (> 1: faster than the
    reference), ``ci_low``/``ci_high`` (bootstrap of the samples, else the
    summary CI bounds; ``ci_method`` says which), and ``status``: the case's
    own status, or ``"no-reference"`` when the reference is not ``ok`` on that
    layer. ``speedup`` is NaN unless both cases are ``ok``.
    """
    import pandas as pd

    by_case = samples_by_case(samples)
    ref = summary[summary["algorithm"] == reference]
    ref_rows = {tuple(r[k] for k in VARIANT_KEYS): r for r in ref.to_dict("records")}
    df = summary if algorithms is None else summary[summary["algorithm"].isin(list(algorithms))]
    out = []
    for i, row in enumerate(df.to_dict("records")):
        base = ref_rows.get(tuple(row[k] for k in VARIANT_KEYS))
        rec = {k: row.get(k) for k in (*VARIANT_KEYS, "algorithm", "layer_class", "count", "case_id",
                                       "in_channels", "kernel_h", "kernel_w", "stride_h", "stride_w")}
        rec.update(reference=reference, status=row["status"], speedup=math.nan, ci_low=math.nan,
                   ci_high=math.nan, ci_method="", time_s=row.get("time_median_s"),
                   reference_time_s=math.nan)
        if base is None or base["status"] != "ok":
            if row["status"] == "ok":
                rec["status"] = "no-reference"
        elif row["status"] == "ok":
            rec["reference_time_s"] = base["time_median_s"]
            rec["speedup"] = base["time_median_s"] / row["time_median_s"]
            lo, hi, how = _ratio_ci(base, row, by_case, confidence, seed + i)
            rec.update(ci_low=lo, ci_high=hi, ci_method=how)
        out.append(rec)
    return pd.DataFrame(out)


# -- two runs ------------------------------------------------------------------------


@dataclass
class Comparison:
    """The result of :func:`compare_runs`: a table and what it means."""

    table: Any  # pandas.DataFrame, one row per matching case
    threshold: float
    confidence: float
    normalised: bool  # whether ratios are of times in reference-kernel units (where both runs have them)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> Any:
        return self.table[self.table["verdict"].isin(["slower", "broken"])]

    @property
    def improvements(self) -> Any:
        return self.table[self.table["verdict"].isin(["faster", "fixed"])]


def _case_index(summary: Any, label: str) -> dict[tuple, dict]:
    rows: dict[tuple, dict] = {}
    for r in summary.to_dict("records"):
        key = tuple(r[k] for k in CASE_KEYS)
        if key in rows:
            raise CompareError(f"{label} has case {_fmt_key(key)} twice; merge or deduplicate it first")
        rows[key] = r
    return rows


def _fmt_key(key: tuple) -> str:
    layer, algorithm, layout, dtype, threads = key
    return f"{layer} / {algorithm} / {layout} / {dtype} / {threads} thread{'s' if threads != 1 else ''}"


def _listing(keys: list[tuple], limit: int = 8) -> str:
    shown = ", ".join(_fmt_key(k) for k in keys[:limit])
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return shown + more


def match_cases(a: Any, b: Any, label_a: str = "A", label_b: str = "B") -> list[tuple[dict, dict]]:
    """Pairs of rows of the same case; raises :class:`CompareError` naming any that do not match."""
    ia, ib = _case_index(a, label_a), _case_index(b, label_b)
    only_a = [k for k in ia if k not in ib]
    only_b = [k for k in ib if k not in ia]
    shape_diff = [
        k for k in ia if k in ib
        and any(str(ia[k].get(c)) != str(ib[k].get(c)) for c in SHAPE_COLUMNS if c in ia[k] and c in ib[k])
    ]
    problems = []
    if only_a:
        problems.append(f"{len(only_a)} case(s) only in {label_a}: {_listing(only_a)}")
    if only_b:
        problems.append(f"{len(only_b)} case(s) only in {label_b}: {_listing(only_b)}")
    if shape_diff:
        problems.append(f"{len(shape_diff)} case(s) with the same name but a different shape: {_listing(shape_diff)}")
    if problems:
        raise CompareError(
            f"the cases of {label_a} and {label_b} do not match; " + "; ".join(problems)
            + ". Compare runs of the same config (same layers, algorithms, layouts, dtypes and threads)."
        )
    return [(ia[k], ib[k]) for k in ia]


def _calibration(env: Mapping[str, Any]) -> float | None:
    """The machine's one-thread sgemm rate when the run started (median of its readings)."""
    return ((env.get("calibration") or {}).get("sgemm_gflops") or {}).get("1")


def compare_runs(
    a: Any, b: Any, *, threshold: float = DEFAULT_THRESHOLD, raw: bool = False, confidence: float = 0.95,
    label_a: str = "A", label_b: str = "B",
) -> Comparison:
    """Compare two runs (:class:`convbench.results.Results`) case by case.

    ``ratio`` is B/A of the median time (> 1: B is slower): of the time in
    units of the reference kernel timed beside each sample
    (``time_norm_median``) where both runs have it and ``raw`` is false, so
    that a machine running at another speed is not a regression of the
    code, else of the plain time (the ``metric`` column says which). A
    case's ``verdict`` (see :mod:`.verdicts`) is ``slower``/``faster`` when
    the ratio's CI lies beyond ``+-threshold`` and the change exceeds both
    runs' spread between repetitions, ``same`` otherwise; ``broken`` when it
    was ``ok`` in A and is not in B, ``fixed`` the other way, ``n/a`` when
    neither is ``ok``. Cases that do not match raise :class:`CompareError`.
    """
    import pandas as pd

    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    pairs = match_cases(a.summary, b.summary, label_a, label_b)
    ra = pd.DataFrame([p[0] for p in pairs]).reset_index(drop=True)
    rb = pd.DataFrame([p[1] for p in pairs]).reset_index(drop=True)

    def col(df: Any, name: str) -> np.ndarray:
        return pd.to_numeric(df[name], errors="coerce").to_numpy(float) if name in df else np.full(len(df), np.nan)

    norm = ~raw & np.isfinite(col(ra, "time_norm_median")) & np.isfinite(col(rb, "time_norm_median"))
    pick = lambda df, n, t: np.where(norm, col(df, n), col(df, t))  # noqa: E731
    ratio, lo, hi = ratio_ci(
        pick(ra, "time_norm_median", "time_median_s"), pick(ra, "time_norm_ci_low", "time_ci_low_s"),
        pick(ra, "time_norm_ci_high", "time_ci_high_s"), pick(rb, "time_norm_median", "time_median_s"),
        pick(rb, "time_norm_ci_low", "time_ci_low_s"), pick(rb, "time_norm_ci_high", "time_ci_high_s"))
    verdict = judge(ratio, lo, hi, pick(ra, "norm_rep_spread", "rep_spread"),
                    pick(rb, "norm_rep_spread", "rep_spread"), threshold)
    ok_a, ok_b = (ra["status"] == "ok").to_numpy(), (rb["status"] == "ok").to_numpy()
    both = ok_a & ok_b
    verdict = np.where(both, verdict, np.where(ok_a, "broken", np.where(ok_b, "fixed", "n/a")))
    table = ra[CASE_KEYS].copy()
    table["status_a"], table["status_b"] = ra["status"], rb["status"]
    table["time_a_s"], table["time_b_s"] = col(ra, "time_median_s"), col(rb, "time_median_s")
    table["metric"] = np.where(norm, "normalised", "raw")
    table["ratio"] = np.where(both, ratio, np.nan)
    table["ci_low"], table["ci_high"] = np.where(both, lo, np.nan), np.where(both, hi, np.nan)
    table["spread_a"], table["spread_b"] = pick(ra, "norm_rep_spread", "rep_spread"), pick(rb, "norm_rep_spread", "rep_spread")
    table["verdict"] = verdict

    notes = []
    gap = speed_gap(_calibration(a.env), _calibration(b.env))
    if gap is not None and abs(gap) > threshold:
        how = "plain times (--raw): expect differences that are the machine's" if raw else \
            "times in reference-kernel units (--raw for plain times)"
        notes.append(f"the machine ran at another speed: sgemm {_calibration(a.env)} GFLOP/s in {label_a}, "
                     f"{_calibration(b.env)} in {label_b} ({gap:+.0%}); comparing {how}")
    if not raw and both.any() and not norm[both].all():
        notes.append(f"{int((both & ~norm).sum())} case(s) lack reference-kernel times (a run of an older "
                     "convbench): compared on plain times")
    single = both & ((col(ra, "n_repetitions") < 2) | (col(rb, "n_repetitions") < 2) |
                     ~np.isfinite(col(ra, "n_repetitions")) | ~np.isfinite(col(rb, "n_repetitions")))
    if single.any():
        notes.append(f"{int(single.sum())} case(s) were measured in one repetition in a run: their intervals "
                     "cover one burst of samples, not the drift between bursts (run with --repeat 3 or more)")
    ma = (a.env.get("cpu") or {}).get("model")
    mb = (b.env.get("cpu") or {}).get("model")
    if ma != mb:
        notes.insert(0, f"the runs are from different CPUs ({ma} vs {mb}): differences are not regressions of the code alone")
    return Comparison(table, threshold, confidence, not raw and bool(norm[both].all()) if both.any() else not raw, notes)
