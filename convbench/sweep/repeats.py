"""One case's row from its repetitions: pooled medians, per-round speedups, drift.

A group (one layer variant at one thread count, every algorithm) is measured
``repeat`` times, each time in a fresh worker process and at another moment
of the sweep. Each repetition yields one row per case and the case's samples,
each sample tagged with its repetition, its round (all algorithms of a group
take one sample per round, interleaved) and the time of the reference kernel
in that round. :func:`combine` turns them into the case's final row:

- ``time_median_s`` and its CI: the pooled median, the CI by a two-level
  bootstrap (repetitions, then samples), so it carries the spread between
  repetitions, not only the spread within a burst;
- ``speedup_vs_baseline`` and its CI: the median of per-round ratios
  (baseline time / algorithm time in the same round), pooled over
  repetitions, with the same bootstrap. A drift of the machine slows both
  sides of a round alike, so it cancels;
- ``time_norm_median`` and its CI: each sample divided by the reference
  kernel's time in its round, the figure ``compare`` uses across runs whose
  machine ran at different speeds;
- ``ref_gflops``, ``ref_drift`` (the worst repetition's drift of the
  reference), ``unstable`` (a repetition whose reference moved beyond
  ``DRIFT_LIMIT`` even after re-measuring), ``n_repetitions``,
  ``reps_agree`` and ``rep_spread``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..timing import drift, summarize, summarize_repetitions

Row = dict[str, Any]

#: A repetition whose reference kernel moved more than this (relative, from
#: the first half of its rounds to the second) is measured again.
DRIFT_LIMIT = 0.10

#: Statuses worse than ``ok``, worst first: a case is only ``ok`` if every
#: repetition was, and otherwise takes the worst repetition's status.
_SEVERITY = ("crashed", "timeout", "error", "failed", "skipped")


def repetition_drift(samples: Sequence[Row]) -> float:
    """The drift of the reference kernel over one repetition's rounds."""
    by_round: dict[int, float] = {}
    for s in samples:
        ref = s.get("ref_time_s")
        if ref is not None and not math.isnan(ref):
            by_round[int(s["round"])] = float(ref)
    return drift([by_round[r] for r in sorted(by_round)])


def _arrays(samples: Sequence[Row], case_id: str) -> dict[str, np.ndarray]:
    mine = [s for s in samples if s["case_id"] == case_id]
    return {
        "time": np.array([s["time_s"] for s in mine], dtype=float),
        "rep": np.array([s["repetition"] for s in mine], dtype=np.int64),
        "round": np.array([s["round"] for s in mine], dtype=np.int64),
        "ref": np.array([s.get("ref_time_s", math.nan) for s in mine], dtype=float),
    }


def _per_round_ratios(base: dict[str, np.ndarray], case: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """baseline time / case time over the (repetition, round) pairs both were sampled in."""
    base_at = {(int(r), int(k)): t for r, k, t in zip(base["rep"], base["round"], base["time"])}
    ratios, reps = [], []
    for r, k, t in zip(case["rep"], case["round"], case["time"]):
        b = base_at.get((int(r), int(k)))
        if b is not None and t > 0:
            ratios.append(b / t)
            reps.append(int(r))
    return np.array(ratios, dtype=float), np.array(reps, dtype=np.int64)


def _status(reps: list[Row]) -> tuple[str, str]:
    """The worst repetition's status and reason; the reason names the repetition
    unless every repetition ended the same way."""
    for status in _SEVERITY:
        bad = [r for r in reps if r.get("status") == status]
        if bad:
            first = bad[0]
            reason = str(first.get("reason") or "")
            same = all(r.get("status") == status and str(r.get("reason") or "") == reason for r in reps)
            prefix = "" if same else f"repetition {int(first['repetition']) + 1} of {len(reps)}: "
            return status, prefix + reason
    # an ok row's reason is a note (a u8s8 answer 1 LSB off): kept if any repetition had one
    return "ok", next((str(r["reason"]) for r in reps if r.get("reason")), "")


def combine(
    rep_rows: Sequence[Row], samples: Sequence[Row], baseline: str | None,
    ref_flops: float, confidence: float = 0.95, seed: int = 0,
) -> list[Row]:
    """The final rows of one group from its repetitions' rows and samples.

    ``rep_rows``: every repetition's row of every case of the group (each
    with ``repetition``); ``samples``: all their samples. Returns one row per
    case, in the order of the first repetition's rows.
    """
    by_case: dict[str, list[Row]] = {}
    for row in sorted(rep_rows, key=lambda r: r["repetition"]):
        by_case.setdefault(row["case_id"], []).append(row)
    arrays = {cid: _arrays(samples, cid) for cid in by_case}
    base_id = next((cid for cid, rows in by_case.items() if rows[0]["algorithm"] == baseline), None)
    base_ok = base_id is not None and _status(by_case[base_id])[0] == "ok"
    out = []
    for i, (cid, reps) in enumerate(by_case.items()):
        row = dict(reps[0])
        row.pop("repetition", None)
        row.pop("pinned_cpu", None)
        status, reason = _status(reps)
        row.update(status=status, reason=reason, n_repetitions=len(reps),
                   max_rel_err=_nanmax(r.get("max_rel_err") for r in reps),
                   max_abs_err_lsb=_nanmax(r.get("max_abs_err_lsb") for r in reps),
                   unstable=any(bool(r.get("unstable")) for r in reps),
                   remeasured=int(sum(int(r.get("remeasured") or 0) for r in reps)),
                   ref_drift=_nanmax(abs(r.get("ref_drift", math.nan)) for r in reps),
                   retaken=int(sum(int(r.get("retaken") or 0) for r in reps)),
                   contended=any(bool(r.get("contended")) for r in reps),
                   other_load=_nanmax(r.get("other_load") for r in reps),
                   steal=_nanmax(r.get("steal") for r in reps),
                   pool_threads=_nanmax(r.get("pool_threads") for r in reps),
                   pinned_cpus=",".join(dict.fromkeys(c for c in (_cpu(r.get("pinned_cpu")) for r in reps) if c)))
        a = arrays[cid]
        if a["time"].size:
            row.update(summarize(a["time"], confidence))
            t = summarize_repetitions(a["time"], a["rep"], confidence, seed=seed + i)
            row.update(time_median_s=t["median"], time_ci_low_s=t["ci_low"], time_ci_high_s=t["ci_high"],
                       n_repetitions=t["n_repetitions"], reps_agree=t["reps_agree"], rep_spread=t["rep_spread"],
                       ci_rel_halfwidth=(t["ci_high"] - t["ci_low"]) / 2 / t["median"] if t["median"] > 0 else math.nan)
            norm = a["time"] / a["ref"]
            n = summarize_repetitions(norm, a["rep"], confidence, seed=seed + i)
            row.update(time_norm_median=n["median"], time_norm_ci_low=n["ci_low"], time_norm_ci_high=n["ci_high"],
                       norm_rep_spread=n["rep_spread"])
            ref = float(np.nanmedian(a["ref"])) if np.isfinite(a["ref"]).any() else math.nan
            row["ref_gflops"] = ref_flops / ref / 1e9 if ref > 0 else math.nan
            if row.get("flops") and t["median"] > 0:
                row["gflops"] = row["flops"] / t["median"] / 1e9
        if status == "ok" and base_ok and row.get("time_median_s", math.nan) > 0:
            ratios, rreps = _per_round_ratios(arrays[base_id], a)
            s = summarize_repetitions(ratios, rreps, confidence, seed=seed + i)
            row.update(speedup_vs_baseline=s["median"], speedup_ci_low=s["ci_low"], speedup_ci_high=s["ci_high"])
        out.append(row)
    return out


def _cpu(value: Any) -> str | None:
    """A core number as text (a CSV gives it back as a float, or NaN for none)."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(int(value))


def _nanmax(values: Any) -> float:
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return max(vals) if vals else math.nan
