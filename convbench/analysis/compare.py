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
(resampled independently), so they are reproducible; every case of a table
is done at once by :mod:`convbench.groupstats`. Where a case has too
few samples (< 2), the interval falls back to the ratio of the summary's
median CI bounds (conservative: the widest ratio the two intervals allow).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .. import groupstats as gs
from ..results.schema import CASE_KEYS, VARIANT_KEYS, flag, with_defaults
from .verdicts import DEFAULT_THRESHOLD, judge, ratio_ci, speed_gap
#: Shape columns that must agree for two cases of the same key to be compared.
SHAPE_COLUMNS = [
    "batch", "in_channels", "out_channels", "height", "width", "kernel_h", "kernel_w",
    "stride_h", "stride_w", "pad_top", "pad_bottom", "pad_left", "pad_right",
    "dilation_h", "dilation_w", "groups",
]

N_BOOT = gs.N_BOOT


class CompareError(Exception):
    """Two runs cannot be compared; the message says which cases differ."""


# -- statistics ---------------------------------------------------------------------
# The statistics themselves live in convbench.groupstats (all cases at once);
# these are the one-pair forms and the table-level glue.


def bootstrap_ratio_ci(
    num: Sequence[float], den: Sequence[float], confidence: float = 0.95,
    n_boot: int = N_BOOT, seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of ``median(num) / median(den)`` (seeded).

    ``num`` and ``den`` are resampled independently. NaNs when either side has
    fewer than 2 finite samples. One pair of :func:`convbench.groupstats.ratio_cis`.
    """
    a = gs.Groups.from_arrays(num, np.zeros(len(num)))
    b = gs.Groups.from_arrays(den, np.zeros(len(den)))
    lo, hi = gs.ratio_cis(a, [0 if len(a.keys) else -1], b, [0 if len(b.keys) else -1],
                          confidence=confidence, n_boot=n_boot, seed=seed)
    return float(lo[0]), float(hi[0])


def ratio_bounds_from_ci(
    num_low: float, num_high: float, den_low: float, den_high: float
) -> tuple[float, float]:
    """The widest ratio two median CIs allow: ``(num_low/den_high, num_high/den_low)``."""
    lo, hi = ratio_bounds_from_cis(*(np.array([v], dtype=float) for v in (num_low, num_high, den_low, den_high)))
    return float(lo[0]), float(hi[0])


def ratio_bounds_from_cis(num_low: Any, num_high: Any, den_low: Any, den_high: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ratio_bounds_from_ci` for arrays: NaN where a bound is missing or not positive."""
    vals = [np.asarray(pd_float(v), dtype=float) for v in (num_low, num_high, den_low, den_high)]
    good = np.logical_and.reduce([np.isfinite(v) & (v > 0) for v in vals])
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(good, vals[0] / vals[3], math.nan)
        hi = np.where(good, vals[1] / vals[2], math.nan)
    return lo, hi


def pd_float(values: Any) -> Any:
    """A column or scalar as floats, None -> NaN."""
    import pandas as pd

    return pd.to_numeric(pd.Series(np.atleast_1d(np.asarray(values, dtype=object))), errors="coerce").to_numpy(float)


#: The last frame :func:`sample_groups` grouped (a weak reference) and its groups: a report asks
#: for the same run's groups once per verdict table, and grouping 25,000 cases' samples took ~2 s.
_grouped: tuple[Any, int, gs.Groups] | None = None


def sample_groups(samples: Any) -> gs.Groups:
    """The per-call times of a samples frame grouped by ``case_id`` (as strings).

    The frame must not change after it is grouped: the last frame's groups are
    remembered (while it lives) and given again for it."""
    global _grouped
    if samples is None or len(samples) == 0:
        return gs.Groups.empty()
    if _grouped is not None and _grouped[0]() is samples and _grouped[1] == len(samples):
        return _grouped[2]
    import weakref

    import pandas as pd

    ids = samples["case_id"]
    if isinstance(ids.dtype, pd.CategoricalDtype):  # keep the codes: one string per case, not per sample
        ids = ids.cat.rename_categories(ids.cat.categories.astype(str))
    else:
        ids = ids.astype(str)
    groups = gs.Groups.from_arrays(samples["time_s"].to_numpy(dtype=float), ids)
    _grouped = (weakref.ref(samples), len(samples), groups)
    return groups


def pair_ratio_cis(
    num: gs.Groups, num_ids: Any, num_ci: tuple[Any, Any], den: gs.Groups, den_ids: Any, den_ci: tuple[Any, Any],
    confidence: float, seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CI of ``median(num case) / median(den case)`` for every pair of case ids.

    The bootstrap of the samples where both cases have >= 2; elsewhere the
    ratio of the summary's median CI bounds (``num_ci``/``den_ci`` are the
    (low, high) columns). Returns ``(low, high, method)``.
    """
    nr = num.rows(np.asarray(num_ids, dtype=str))
    dr = den.rows(np.asarray(den_ids, dtype=str))
    boot = (num.size_of(nr) >= 2) & (den.size_of(dr) >= 2)
    lo, hi = gs.ratio_cis(num, np.where(boot, nr, -1), den, np.where(boot, dr, -1),
                          confidence=confidence, seed=seed)
    flo, fhi = ratio_bounds_from_cis(num_ci[0], num_ci[1], den_ci[0], den_ci[1])
    method = np.where(boot, "bootstrap", "summary-ci").astype(object)
    return np.where(boot, lo, flo), np.where(boot, hi, fhi), method


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

    df = summary if algorithms is None else summary[summary["algorithm"].isin(list(algorithms))]
    df = df.reset_index(drop=True)
    ref = summary[summary["algorithm"] == reference].drop_duplicates(VARIANT_KEYS, keep="last").reset_index(drop=True)
    if len(ref):
        pos = pd.MultiIndex.from_frame(ref[VARIANT_KEYS]).get_indexer(pd.MultiIndex.from_frame(df[VARIANT_KEYS]))
    else:
        pos = np.full(len(df), -1)
    has = pos >= 0
    at = np.maximum(pos, 0)

    def base(col: str) -> np.ndarray:
        vals = ref[col].to_numpy()[at] if len(ref) else np.full(len(df), None, dtype=object)
        return np.where(has, vals, None)

    row_ok = (df["status"] == "ok").to_numpy()
    ref_ok = has & (base("status") == "ok")
    both = row_ok & ref_ok
    out = pd.DataFrame({k: df[k] if k in df.columns else None
                        for k in (*VARIANT_KEYS, "algorithm", "layer_class", "count", "case_id",
                                  "in_channels", "kernel_h", "kernel_w", "stride_h", "stride_w")})
    out["reference"] = reference
    out["status"] = np.where(row_ok & ~ref_ok, "no-reference", df["status"].to_numpy(dtype=object))
    ref_time = pd_float(base("time_median_s"))
    time = pd_float(df["time_median_s"])
    with np.errstate(divide="ignore", invalid="ignore"):
        out["speedup"] = np.where(both, ref_time / time, math.nan)
    out["ci_low"], out["ci_high"], out["ci_method"] = math.nan, math.nan, ""
    if both.any():
        g = sample_groups(samples)
        idx = np.flatnonzero(both)
        lo, hi, how = pair_ratio_cis(
            g, base("case_id")[idx].astype(str), (base("time_ci_low_s")[idx], base("time_ci_high_s")[idx]),
            g, df["case_id"].astype(str).to_numpy()[idx],
            (df["time_ci_low_s"].to_numpy()[idx], df["time_ci_high_s"].to_numpy()[idx]), confidence, seed)
        out.loc[idx, "ci_low"], out.loc[idx, "ci_high"], out.loc[idx, "ci_method"] = lo, hi, how
    out["time_s"] = df["time_median_s"]
    out["reference_time_s"] = np.where(both, ref_time, math.nan)
    return out


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


def _keys_of(summary: Any) -> list[tuple]:
    return list(zip(*(summary[k].tolist() for k in CASE_KEYS))) if len(summary) else []


def _check_unique(summary: Any, label: str) -> None:
    dup = summary.duplicated(CASE_KEYS, keep="first").to_numpy() if len(summary) else np.zeros(0, bool)
    if dup.any():
        key = _keys_of(summary.iloc[[int(np.argmax(dup))]])[0]
        raise CompareError(f"{label} has case {_fmt_key(key)} twice; merge or deduplicate it first")


def _fmt_key(key: tuple) -> str:
    layer, algorithm, layout, dtype, threads, cache = key
    return (f"{layer} / {algorithm} / {layout} / {dtype} / {threads} thread{'s' if threads != 1 else ''}"
            + (f" / {cache} caches" if cache != "warm" else ""))


def _listing(keys: list[tuple], limit: int = 8) -> str:
    shown = ", ".join(_fmt_key(k) for k in keys[:limit])
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return shown + more


def aligned_cases(a: Any, b: Any, label_a: str = "A", label_b: str = "B") -> tuple[Any, Any]:
    """The rows of ``a`` and of ``b`` for the same cases, in ``a``'s order, index reset.

    Raises :class:`CompareError` naming any case in only one of them, any
    case twice in one, or any case whose shape differs.
    """
    import pandas as pd

    a, b = with_defaults(a), with_defaults(b)
    _check_unique(a, label_a)
    _check_unique(b, label_b)
    ia = pd.MultiIndex.from_frame(a[CASE_KEYS]) if len(a) else None
    ib = pd.MultiIndex.from_frame(b[CASE_KEYS]) if len(b) else None
    pos = ib.get_indexer(ia) if ia is not None and ib is not None else np.full(len(a), -1)
    back = ia.get_indexer(ib) if ia is not None and ib is not None else np.full(len(b), -1)
    keys_a, keys_b = _keys_of(a), _keys_of(b)
    only_a = [k for k, p in zip(keys_a, pos) if p < 0]
    only_b = [k for k, p in zip(keys_b, back) if p < 0]
    both = np.flatnonzero(pos >= 0)
    ra, rb = a.iloc[both].reset_index(drop=True), b.iloc[pos[both]].reset_index(drop=True)
    differs = np.zeros(len(both), bool)
    for c in SHAPE_COLUMNS:
        if c in ra.columns and c in rb.columns:
            differs |= (ra[c].astype(str).to_numpy() != rb[c].astype(str).to_numpy())
    shape_diff = [keys_a[i] for i in both[differs]]
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
    return ra, rb


def match_cases(a: Any, b: Any, label_a: str = "A", label_b: str = "B") -> list[tuple[dict, dict]]:
    """Pairs of rows of the same case; raises :class:`CompareError` naming any that do not match."""
    ra, rb = aligned_cases(a, b, label_a, label_b)
    return list(zip(ra.to_dict("records"), rb.to_dict("records")))


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
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    ra, rb = aligned_cases(a.summary, b.summary, label_a, label_b)

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
    # a change measured while other processes took the cores is not one to trust: said beside the verdict
    table["contended"] = flag(ra, "contended") | flag(rb, "contended")

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
    if table["contended"].to_numpy()[both].any():
        notes.append(f"{int(table['contended'].to_numpy()[both].sum())} case(s) were contended in a run (other "
                     "processes took their cores; marked 'contended'): a change there is not one to trust")
    if single.any():
        notes.append(f"{int(single.sum())} case(s) were measured in one repetition in a run: their intervals "
                     "cover one burst of samples, not the drift between bursts (run with --repeat 3 or more)")
    ma = (a.env.get("cpu") or {}).get("model")
    mb = (b.env.get("cpu") or {}).get("model")
    if ma != mb:
        notes.insert(0, f"the runs are from different CPUs ({ma} vs {mb}): differences are not regressions of the code alone")
    return Comparison(table, threshold, confidence, not raw and bool(norm[both].all()) if both.any() else not raw, notes)
