"""The paper's explanation, tested with phases, and its claims per cache state (report.md sections).

Indirect Convolution's claim is that it removes the im2col copy. If that is
the whole story, indirect's gain over the same GEMM on an im2col matrix
(``im2col-numba``) is the time of that copy: with the copy's share ``p`` of
im2col-numba's call, the expected speedup is ``1 / (1 - p)``. From
``phases.csv`` (the ``pack`` share of im2col-numba's call) and the summary
(the two algorithms' medians), :func:`pack_share_table` sets the two side by
side per layer, and :func:`pack_share_lines` summarises them per layer class,
warm and cold where both ran. :func:`cache_sections` judges the claims again
on the cold cases of a run that measured both states.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..timing import geomean

#: Per (layer, layout, dtype, threads, cache): what identifies a layer variant here.
KEYS = ["layer", "layout", "dtype", "threads", "cache"]


def pack_share_table(summary: Any, phases: Any) -> Any:
    """Per layer variant with both ok: im2col-numba's ``pack`` share of its call, the
    speedup that share predicts (``1 / (1 - share)``) and indirect's measured speedup."""
    import pandas as pd

    if not len(phases):
        return pd.DataFrame(columns=[*KEYS, "layer_class", "pack_share", "predicted", "measured"])
    ok = summary[summary["status"] == "ok"]
    t = {a: ok[ok["algorithm"] == a].set_index(KEYS) for a in ("im2col-numba", "indirect")}
    ph = phases[(phases["algorithm"] == "im2col-numba")]
    share = ph[ph["phase"] == "pack"].groupby(KEYS)["share"].sum()
    both = t["im2col-numba"].index.intersection(t["indirect"].index)
    rows = []
    for key in both:
        s = float(share.get(key, 0.0)) if key in set(ph.set_index(KEYS).index) else np.nan
        rows.append({**dict(zip(KEYS, key)), "layer_class": t["indirect"].loc[key, "layer_class"],
                     "pack_share": s, "predicted": 1 / (1 - s) if s == s and s < 1 else np.nan,
                     "measured": t["im2col-numba"].loc[key, "time_median_s"] / t["indirect"].loc[key, "time_median_s"]})
    return pd.DataFrame(rows)


def pack_share_lines(summary: Any, phases: Any) -> list[str]:
    """The report's section: per layer class (and cache state), the median pack share and
    the geometric means of predicted and measured speedup."""
    t = pack_share_table(summary, phases).dropna(subset=["pack_share"])
    lines = ["## Where indirect's gain comes from (phases)", ""]
    if t.empty:
        return lines + ["No run of both indirect and im2col-numba with phases timed (`phases.csv`): "
                        "rerun without `--no-phases` to test the paper's explanation.", ""]
    lines += ["If removing the im2col copy is the whole of indirect's advantage, its speedup over "
              "`im2col-numba` (the same micro-kernel on a copied matrix) is 1 / (1 - pack share), the pack "
              "share being the copy's part of im2col-numba's call (`phases.csv`).", "",
              "| layer class | cache | layers | pack share (median) | predicted speedup (geomean) | "
              "measured speedup (geomean) | measured / predicted |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for (cls, cache), g in t.groupby(["layer_class", "cache"], sort=False):
        pred, meas = geomean(g["predicted"]), geomean(g["measured"])
        lines.append(f"| {cls or '-'} | {cache} | {len(g)} | {g['pack_share'].median():.0%} | {pred:.2f}x | "
                     f"{meas:.2f}x | {meas / pred:.2f} |")
    r = np.corrcoef(t["pack_share"], t["measured"])[0, 1] if len(t) > 2 else np.nan
    lines += ["", f"Across {len(t)} layer variants the correlation of pack share with indirect's measured "
              f"speedup is {r:.2f}." if r == r else "", ""]
    return lines


def cache_sections(summary: Any, samples: Any, evaluate: Callable[[Any, Any], list],
                   render: Callable[[list], list[str]]) -> list[str]:
    """With warm and cold cases, the claims judged again on the cold ones (``render`` draws
    the verdict table of ``evaluate``'s findings)."""
    if "cache" not in summary.columns or set(summary["cache"]) != {"warm", "cold"}:
        return []
    cold = summary[summary["cache"] == "cold"]
    ids = set(cold["case_id"])
    cold_samples = samples[samples["case_id"].isin(ids)] if samples is not None else None
    return ["## Verdicts with cold caches", "",
            "The same claims on the cold cases: before every timed call the operands were evicted from "
            "every cache level (env.json's `cold_cache` says how), as in a network where a layer's "
            "weights and input come from memory.", "", *render(evaluate(cold, cold_samples)), ""]


def warm_only(summary: Any) -> Any:
    """The warm cases where a run has them (the paper's setting), else all."""
    if "cache" in summary.columns and (summary["cache"] == "warm").any():
        return summary[summary["cache"] == "warm"]
    return summary


def headline_cases(summary: Any) -> Any:
    """What the headline verdicts judge: the warm cases (:func:`warm_only`) at the run's
    lowest thread count; every count is judged on its own in :func:`thread_sections`."""
    s = warm_only(summary)
    if "threads" not in s.columns or s.empty:
        return s
    return s[s["threads"] == s["threads"].min()]


def thread_sections(summary: Any, samples: Any, evaluate: Callable[[Any, Any], list],
                    render: Callable[[list], list[str]]) -> list[str]:
    """With more than one thread count, the claims judged at each count on its own
    cases (the algorithms compared at the same count, as measured interleaved)."""
    s = warm_only(summary)
    counts = sorted(int(t) for t in set(s["threads"])) if "threads" in s.columns else []
    if len(counts) < 2:
        return []
    lines = ["## Verdicts at each thread count", "",
             f"The verdicts above are at {counts[0]} thread{'s' if counts[0] != 1 else ''}, the run's lowest "
             "count. Here each count is judged on its own cases; how each algorithm scales is the "
             "thread-scaling figure (`plots/thread_scaling.png`).", ""]
    for t in counts:
        part = s[s["threads"] == t]
        ids = set(part["case_id"])
        part_samples = samples[samples["case_id"].isin(ids)] if samples is not None else None
        lines += [f"### {t} thread{'s' if t != 1 else ''}", "", *render(evaluate(part, part_samples)), ""]
    return lines
