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

from ..results.schema import VARIANT_KEYS

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
    tol_col = summary["error_tolerance"] if "error_tolerance" in summary.columns else [None] * len(summary)
    within = [
        not (isinstance(err, float) and math.isfinite(err)) or err <= tolerance(algo, dtype, tol)
        for algo, dtype, err, tol in zip(summary["algorithm"], summary["dtype"],
                                         summary["max_rel_err"].astype(float), tol_col)
    ]
    import pandas as pd

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
    """
    import pandas as pd

    ok = eligible(summary)
    rows = []
    for key, g in summary.groupby(VARIANT_KEYS, sort=False):
        good = g[ok.loc[g.index]].sort_values("time_median_s", kind="stable")
        bad = g[(g["status"] == "ok") & ~ok.loc[g.index]]
        first = g.iloc[0]
        rec = dict(zip(VARIANT_KEYS, key))
        rec.update(layer_class=first["layer_class"], count=int(first["count"]), algorithm="",
                   time_median_s=math.nan, time_ci_low_s=math.nan, time_ci_high_s=math.nan,
                   gflops=math.nan, speedup_vs_baseline=math.nan, runner_up="", runner_up_time_s=math.nan, margin=math.nan,
                   clear_winner=False, candidates=len(good),
                   excluded=",".join(bad["algorithm"].astype(str)))
        if len(good):
            best = good.iloc[0]
            rec.update(algorithm=best["algorithm"], time_median_s=best["time_median_s"],
                       time_ci_low_s=best["time_ci_low_s"], time_ci_high_s=best["time_ci_high_s"],
                       gflops=best["gflops"], speedup_vs_baseline=best.get("speedup_vs_baseline", math.nan))
            if len(good) > 1:
                second = good.iloc[1]
                rec.update(runner_up=second["algorithm"], runner_up_time_s=second["time_median_s"],
                           margin=second["time_median_s"] / best["time_median_s"],
                           clear_winner=bool(_num(best["time_ci_high_s"]) < _num(second["time_ci_low_s"])))
            else:
                rec["clear_winner"] = True
        rows.append(rec)
    return pd.DataFrame(rows)


def network_comparison(summary: Any, selection: Any | None = None) -> Any:
    """Per layout x dtype x threads: network time of each choice, weighted by ``count``.

    One row for ``best per layer`` and one per algorithm. ``complete`` says
    whether the choice covers every layer (an incomplete total leaves layers
    out, so it is not a network time); ``vs_best`` is total / best-per-layer
    total (only for complete choices).
    """
    import pandas as pd

    if selection is None:
        selection = select_best(summary)
    ok = eligible(summary)
    counted = summary.copy()
    counted.loc[(counted["status"] == "ok") & ~ok, "status"] = "failed"  # beyond tolerance: no win
    per_algo = network_totals(counted)
    rows = []
    for key, g in selection.groupby(["layout", "dtype", "threads"], sort=False):
        chosen = g[g["algorithm"] != ""]
        best_total = float((chosen["count"] * chosen["time_median_s"]).sum()) if len(chosen) else math.nan
        complete = len(chosen) == len(g)
        rows.append(dict(layout=key[0], dtype=key[1], threads=key[2], choice="best per layer",
                         total_s=best_total, layers_ok=len(chosen), layers=len(g), complete=complete,
                         vs_best=1.0 if complete else math.nan))
        mine = per_algo[(per_algo["layout"] == key[0]) & (per_algo["dtype"] == key[1]) & (per_algo["threads"] == key[2])]
        for r in mine.sort_values("total_s").to_dict("records"):
            rows.append(dict(layout=key[0], dtype=key[1], threads=key[2], choice=r["algorithm"],
                             total_s=r["total_s"], layers_ok=r["layers_ok"], layers=r["layers"],
                             complete=r["complete"],
                             vs_best=r["total_s"] / best_total if r["complete"] and complete and best_total > 0 else math.nan))
    return pd.DataFrame(rows)


def network_totals(summary: Any) -> Any:
    """Per algorithm x layout x dtype x threads: sum of ``count * median`` over layers.

    ``complete`` says whether the algorithm was ``ok`` on every layer; an
    incomplete total leaves out layers it skipped or failed, so it is not a
    network time (``layers_ok`` / ``layers`` say how many it covers).
    """
    import pandas as pd

    df = summary.copy()
    df["weighted_s"] = df["count"] * df["time_median_s"]
    df["weighted_flops"] = df["count"] * df["flops"]
    df["is_ok"] = df["status"] == "ok"
    rows = []
    for key, g in df.groupby(["algorithm", "layout", "dtype", "threads"], sort=False):
        ok = g[g["is_ok"]]
        total = float(ok["weighted_s"].sum())
        rows.append({
            "algorithm": key[0], "layout": key[1], "dtype": key[2], "threads": key[3],
            "total_s": total if len(ok) else math.nan,
            "gflops": float(ok["weighted_flops"].sum()) / total / 1e9 if total > 0 else math.nan,
            "layers_ok": int(len(ok)), "layers": int(len(g)), "complete": bool(len(ok) == len(g)),
        })
    return pd.DataFrame(rows)


def write_selection(results_dir: str | Path) -> tuple[Path, Any, Any]:
    """Read a results folder, write ``selection.csv`` (+ the network table); return both frames."""
    from ..results import read_results

    res = read_results(results_dir)
    selection = select_best(res.summary)
    network = network_comparison(res.summary, selection)
    path = Path(results_dir) / SELECTION_FILE
    selection.to_csv(path, index=False)
    network.to_csv(Path(results_dir) / NETWORK_FILE, index=False)
    return path, selection, network
