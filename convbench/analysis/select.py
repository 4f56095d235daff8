"""The best algorithm per layer, and what choosing per layer buys a network.

:func:`select_best` picks, for every layer variant (layer x layout x dtype x
threads), the fastest case that is ``ok`` *and* within its algorithm's error
tolerance. The tolerance is the registered algorithm's
``tolerance_for(dtype)``; for an algorithm not registered in this process
(a plugin not loaded), the run's ``error_tolerance`` column; if neither is
known, the ``ok`` status alone decides.

:func:`network_totals` sums ``count x median`` per algorithm;
:func:`network_comparison` weighs each layer by its ``count`` and sets the
network total of "best per layer" against "one algorithm everywhere".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..results.schema import VARIANT_KEYS, with_defaults

SELECTION_FILE = "selection.csv"
NETWORK_FILE = "selection_network.csv"


def tolerance(algorithm: str, dtype: str, row_tolerance: Any = None) -> float:
    """The max relative error ``algorithm`` may have in ``dtype`` (inf when unknown)."""
    from ..registry import get_algorithm, list_algorithms

    if algorithm in list_algorithms():
        try:
            return get_algorithm(algorithm).tolerance_for(dtype)
        except (KeyError, ValueError):
            pass
    try:
        value = float(row_tolerance)
    except (TypeError, ValueError):
        return math.inf
    return value if math.isfinite(value) else math.inf


def eligible(summary: Any) -> Any:
    """Boolean Series: the case is ``ok`` and its error is within tolerance."""
    import numpy as np
    import pandas as pd

    tol_col = (summary["error_tolerance"] if "error_tolerance" in summary.columns
               else pd.Series([None] * len(summary), index=summary.index))
    # one tolerance look-up per distinct (algorithm, dtype, tolerance column), not per row
    keys = pd.DataFrame({"a": summary["algorithm"].astype(str).to_numpy(dtype=object),
                         "d": summary["dtype"].astype(str).to_numpy(dtype=object),
                         "t": tol_col.astype(str).to_numpy(dtype=object)})
    firsts = ~keys.duplicated()
    table = {(a, d, t): tolerance(a, d, raw)
             for (a, d, t), raw in zip(keys[firsts].itertuples(index=False), tol_col[firsts.to_numpy()])}
    tol = np.array([table[k] for k in keys.itertuples(index=False, name=None)], dtype=float)
    err = summary["max_rel_err"].to_numpy(dtype=float)
    within = ~np.isfinite(err) | (err <= tol)
    return (summary["status"] == "ok") & pd.Series(within, index=summary.index)


def _num(value: Any) -> float:
    """A float, NaN for a missing value (too few samples give no interval)."""
    return math.nan if value is None else float(value)


def select_best(summary: Any) -> Any:
    """One row per layer variant: the winner, the runner-up and by how much.

    Columns: the variant keys, ``layer_class``, ``count``, ``algorithm`` (the
    winner; empty when no case qualifies), ``time_median_s``,
    ``time_ci_low_s``/``time_ci_high_s``, ``gflops``, ``speedup_vs_baseline``, ``runner_up``,
    ``runner_up_time_s``, ``margin`` (runner-up time / winner time),
    ``clear_winner`` (the two medians' CIs do not overlap), ``candidates``
    (qualifying algorithms) and ``excluded`` (``ok`` but beyond tolerance).
    Variants in order of first appearance; ties in time keep the run's order.
    Done with array operations over the whole table (a loop over groups took
    minutes at tens of thousands of cases).
    """
    import numpy as np
    import pandas as pd

    summary = with_defaults(summary)
    ok = eligible(summary).to_numpy()
    df = summary.reset_index(drop=True)
    codes = df.groupby(VARIANT_KEYS, sort=False).ngroup().to_numpy()
    n = int(codes.max()) + 1 if len(codes) else 0
    valid = codes >= 0
    _, first = np.unique(np.where(valid, codes, n), return_index=True)
    first = first[:n]  # first row of each variant (the row of code n is the dropped NaN keys)

    def col(name: str) -> np.ndarray:
        return df[name].to_numpy(dtype=float) if name in df.columns else np.full(len(df), math.nan)

    time = col("time_median_s")
    good = np.flatnonzero(ok & valid)
    good = good[np.lexsort((time[good], codes[good]))]  # by variant, then time (stable: the run's order)
    gcode = codes[good]
    starts = np.searchsorted(gcode, np.arange(n))
    candidates = np.bincount(gcode, minlength=n)
    rank = np.arange(len(good)) - starts[gcode] if len(good) else np.zeros(0, dtype=np.int64)
    best = np.full(n, -1)
    second = np.full(n, -1)
    best[gcode[rank == 0]] = good[rank == 0]
    second[gcode[rank == 1]] = good[rank == 1]
    has1, has2 = best >= 0, second >= 0

    def pick(values: np.ndarray, rows: np.ndarray, empty: Any) -> np.ndarray:
        out = np.full(n, empty, dtype=values.dtype if empty is not None else object)
        out[rows >= 0] = values[rows[rows >= 0]]
        return out

    algo = df["algorithm"].astype(str).to_numpy(dtype=object)
    bad = (df["status"] == "ok").to_numpy() & ~ok & valid
    excluded = [[] for _ in range(n)]
    for code, name in zip(codes[bad], algo[bad]):
        excluded[code].append(name)
    out = pd.DataFrame({k: df[k].to_numpy()[first] for k in VARIANT_KEYS})
    out["layer_class"] = df["layer_class"].to_numpy()[first]
    out["count"] = df["count"].to_numpy()[first].astype(int)
    out["algorithm"] = pick(algo, best, "")
    for name in ("time_median_s", "time_ci_low_s", "time_ci_high_s", "gflops", "speedup_vs_baseline"):
        out[name] = pick(col(name), best, math.nan)
    out["runner_up"] = pick(algo, second, "")
    out["runner_up_time_s"] = pick(time, second, math.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["margin"] = np.where(has2, out["runner_up_time_s"] / out["time_median_s"], math.nan)
        overlap_free = pick(col("time_ci_high_s"), best, math.nan) < pick(col("time_ci_low_s"), second, math.nan)
    out["clear_winner"] = np.where(has2, overlap_free, has1).astype(bool)
    out["candidates"] = candidates
    out["excluded"] = [",".join(x) for x in excluded]
    return out


#: What a network total is per: every variant key but the layer.
NETWORK_KEYS = [k for k in VARIANT_KEYS if k != "layer"]


def network_comparison(summary: Any, selection: Any | None = None) -> Any:
    """Per layout x dtype x threads x cache: network time of each choice, weighted by ``count``.

    One row for ``best per layer`` and one per algorithm. ``complete`` says
    whether the choice covers every layer (an incomplete total leaves layers
    out, so it is not a network time); ``vs_best`` is total / best-per-layer
    total (only for complete choices).
    """
    import pandas as pd

    summary = with_defaults(summary)
    if selection is None:
        selection = select_best(summary)
    ok = eligible(summary)
    counted = summary.copy()
    counted.loc[(counted["status"] == "ok") & ~ok, "status"] = "failed"  # beyond tolerance: no win
    per_algo = network_totals(counted)
    rows = []
    for key, g in selection.groupby(NETWORK_KEYS, sort=False):
        variant = dict(zip(NETWORK_KEYS, key))
        chosen = g[g["algorithm"] != ""]
        best_total = float((chosen["count"] * chosen["time_median_s"]).sum()) if len(chosen) else math.nan
        complete = len(chosen) == len(g)
        rows.append(dict(**variant, choice="best per layer",
                         total_s=best_total, layers_ok=len(chosen), layers=len(g), complete=complete,
                         vs_best=1.0 if complete else math.nan))
        mine = per_algo[(per_algo[NETWORK_KEYS] == pd.Series(variant)).all(axis=1)]
        for r in mine.sort_values("total_s").to_dict("records"):
            rows.append(dict(**variant, choice=r["algorithm"],
                             total_s=r["total_s"], layers_ok=r["layers_ok"], layers=r["layers"],
                             complete=r["complete"],
                             vs_best=r["total_s"] / best_total if r["complete"] and complete and best_total > 0 else math.nan))
    return pd.DataFrame(rows)


def network_totals(summary: Any) -> Any:
    """Per algorithm x layout x dtype x threads x cache: sum of ``count * median`` over layers.

    ``complete`` says whether the algorithm was ``ok`` on every layer; an
    incomplete total leaves out layers it skipped or failed, so it is not a
    network time (``layers_ok`` / ``layers`` say how many it covers).
    """
    import pandas as pd

    df = with_defaults(summary).copy()
    df["weighted_s"] = df["count"] * df["time_median_s"]
    df["weighted_flops"] = df["count"] * df["flops"]
    df["is_ok"] = df["status"] == "ok"
    rows = []
    for key, g in df.groupby(["algorithm", *NETWORK_KEYS], sort=False):
        ok = g[g["is_ok"]]
        total = float(ok["weighted_s"].sum())
        rows.append({
            "algorithm": key[0], **dict(zip(NETWORK_KEYS, key[1:])),
            "total_s": total if len(ok) else math.nan,
            "gflops": float(ok["weighted_flops"].sum()) / total / 1e9 if total > 0 else math.nan,
            "layers_ok": int(len(ok)), "layers": int(len(g)), "complete": bool(len(ok) == len(g)),
        })
    return pd.DataFrame(rows)


def write_selection(results_dir: str | Path) -> tuple[Path, Any, Any]:
    """Read a results folder, write ``selection.csv`` (+ the network table); return both frames."""
    from ..results import read_results

    res = read_results(results_dir, samples=False)  # the summary decides; samples are not read
    selection = select_best(res.summary)
    network = network_comparison(res.summary, selection)
    path = Path(results_dir) / SELECTION_FILE
    selection.to_csv(path, index=False)
    network.to_csv(Path(results_dir) / NETWORK_FILE, index=False)
    return path, selection, network
