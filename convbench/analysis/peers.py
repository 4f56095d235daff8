"""How far convbench is from production: its best algorithm against the best peer.

A *peer* is a production library measured in the same run through the same
interface (``torch``, ``onednn``, ``onnxruntime``; see
:class:`convbench.algorithms.peer.Peer`). For every layer variant (layer x
layout x dtype x threads), :func:`versus_peers` sets the fastest eligible
convbench algorithm (``ok`` and within tolerance, as in
:func:`convbench.analysis.select.select_best`) against the fastest eligible
peer: ``ratio`` = peer median / convbench median, so > 1 means convbench is
faster, with a 95% percentile-bootstrap interval from the per-call samples
(the summary CIs' widest ratio where samples are missing).

:func:`network_versus_peers` weighs the layers by ``count``: the network
time with the best convbench algorithm on each layer against the best peer
on each layer, over the layers where both have one, with an interval that
draws every layer's median from its summary interval. Picking the fastest of
several algorithms from the same samples favours the winner slightly on
each side (the "winner's curse"); both sides get the same treatment.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .compare import N_BOOT, VARIANT_KEYS, pair_ratio_cis, sample_groups

#: Peers shipped with convbench, recognised in a results folder even where
#: their packages are not installed (older folders record no ``peers``).
KNOWN_PEERS = ("torch", "onednn", "onnxruntime")
LAYERS_FILE = "selection_peers.csv"
NETWORK_FILE = "selection_peers_network.csv"


def is_peer(algorithm: str, env: dict | None = None) -> bool:
    """Whether ``algorithm`` is a production peer: as recorded in ``env`` (a run's
    ``env.json``), else the registered algorithm's ``peer`` flag, else a known peer name."""
    if env and isinstance(env.get("peers"), list):
        return algorithm in env["peers"]
    from ..registry import get_algorithm, list_algorithms

    if algorithm in list_algorithms():
        return bool(getattr(get_algorithm(algorithm), "peer", False))
    return algorithm in KNOWN_PEERS


def peer_names(algorithms: Iterable[str], env: dict | None = None) -> set[str]:
    """The peers among ``algorithms``."""
    return {a for a in algorithms if is_peer(str(a), env)}


def versus_peers(summary: Any, samples: Any = None, env: dict | None = None,
                 confidence: float = 0.95, seed: int = 0) -> Any:
    """One row per layer variant with both a convbench algorithm and a peer measured.

    Columns: the variant keys, ``layer_class``, ``count``, ``convbench`` and
    ``peer`` (the two winners), ``convbench_time_s``, ``peer_time_s``,
    ``convbench_impl``/``peer_impl`` (their ``implementation``), ``ratio``
    (peer time / convbench time: > 1 means convbench is faster),
    ``ci_low``/``ci_high``, ``ci_method`` and ``verdict`` (``convbench
    faster``, ``peer faster`` or ``tie`` when the interval holds 1).
    Variants where either side has no eligible case have an empty winner
    on that side and a NaN ratio.
    """
    import pandas as pd

    from .select import eligible

    peers = peer_names(summary["algorithm"].unique(), env)
    df = summary.assign(_ok=eligible(summary).to_numpy(), _peer=summary["algorithm"].isin(peers).to_numpy())
    df = df[df.groupby(VARIANT_KEYS, sort=False)["_peer"].transform("any")]  # variants where a peer ran
    if not len(df):
        return pd.DataFrame()
    out = df.groupby(VARIANT_KEYS, sort=False)[["layer_class", "count"]].first().reset_index()
    out["count"] = out["count"].astype(int)
    if "implementation" not in df.columns:
        df = df.assign(implementation="")
    # the fastest eligible case of each side of each variant, all variants at once
    best = df[df["_ok"]].sort_values("time_median_s", kind="stable").groupby([*VARIANT_KEYS, "_peer"]).head(1)
    at = pd.MultiIndex.from_frame(out[VARIANT_KEYS])
    for side, is_peer_side in (("convbench", False), ("peer", True)):
        b = best[best["_peer"] == is_peer_side].set_index(VARIANT_KEYS).reindex(at)
        out[side] = b["algorithm"].fillna("").astype(str).to_numpy()
        out[f"{side}_time_s"] = b["time_median_s"].astype(float).to_numpy()
        out[f"{side}_impl"] = b["implementation"].fillna("").astype(str).to_numpy()
        out[f"_{side}_id"] = b["case_id"].astype(object).to_numpy()
        out[f"_{side}_lo"] = b["time_ci_low_s"].astype(float).to_numpy()
        out[f"_{side}_hi"] = b["time_ci_high_s"].astype(float).to_numpy()
    out["ratio"] = out["peer_time_s"] / out["convbench_time_s"]
    out["ci_low"], out["ci_high"], out["ci_method"], out["verdict"] = math.nan, math.nan, "", ""
    both = np.flatnonzero(((out["convbench"] != "") & (out["peer"] != "")).to_numpy())
    if len(both):  # every pair's interval at once: one vectorised bootstrap
        groups = sample_groups(samples)
        pick = out.iloc[both]
        lo, hi, how = pair_ratio_cis(groups, pick["_peer_id"].astype(str).to_numpy(),
                                     (pick["_peer_lo"].to_numpy(), pick["_peer_hi"].to_numpy()),
                                     groups, pick["_convbench_id"].astype(str).to_numpy(),
                                     (pick["_convbench_lo"].to_numpy(), pick["_convbench_hi"].to_numpy()),
                                     confidence, seed)
        verdict = np.where(lo > 1, "convbench faster", np.where(hi < 1, "peer faster", "tie"))
        out.loc[both, "ci_low"], out.loc[both, "ci_high"] = lo, hi
        out.loc[both, "ci_method"], out.loc[both, "verdict"] = how, verdict
    return out.drop(columns=[c for c in out.columns if c.startswith("_")])


def network_versus_peers(layers: Any, summary: Any, confidence: float = 0.95,
                         n_boot: int = N_BOOT, seed: int = 0) -> Any:
    """Per layout x dtype x threads: sum of ``count x median`` of the best convbench
    algorithm per layer against that of the best peer per layer (``layers`` from
    :func:`versus_peers`), over the layers where both exist; ``ratio`` > 1 means
    convbench is faster; ``layers_compared`` / ``layers``.

    The interval draws every layer's median from its own interval in the
    summary (a bootstrap over repetitions, so it carries the drift between
    them; log-normal, all layers at once) and takes quantiles of the ratio of
    the weighted sums: milliseconds for tens of thousands of layers.
    """
    from statistics import NormalDist

    import pandas as pd

    if layers is None or not len(layers):
        return pd.DataFrame(columns=["layout", "dtype", "threads", "convbench_total_s", "peer_total_s", "ratio",
                                     "ci_low", "ci_high", "layers_compared", "layers"])
    ci = summary.set_index([*VARIANT_KEYS, "algorithm"])[["time_ci_low_s", "time_ci_high_s"]]
    ci = ci[~ci.index.duplicated(keep="last")]
    rng = np.random.default_rng(seed)
    alpha = (1 - confidence) / 2
    z = NormalDist().inv_cdf(1 - alpha)

    def draws(rows: Any, side: str) -> np.ndarray:
        """(layers, n_boot) medians of the ``side`` winner of each layer."""
        at = pd.MultiIndex.from_arrays([rows[k] for k in VARIANT_KEYS] + [rows[side]])
        bounds = ci.reindex(at).to_numpy(dtype=float)
        med = rows[f"{side}_time_s"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            sigma = np.nan_to_num((np.log(bounds[:, 1]) - np.log(bounds[:, 0])) / (2 * z), nan=0.0)
        return med[:, None] * np.exp(sigma[:, None] * rng.standard_normal((len(rows), n_boot)))

    rows = []
    for key, g in layers.groupby(["layout", "dtype", "threads"], sort=False):
        both = g[(g["convbench"] != "") & (g["peer"] != "")]
        rec = dict(layout=key[0], dtype=key[1], threads=key[2], convbench_total_s=math.nan, peer_total_s=math.nan,
                   ratio=math.nan, ci_low=math.nan, ci_high=math.nan, layers_compared=len(both), layers=len(g))
        if len(both):
            count = both["count"].to_numpy(dtype=float)[:, None]
            ours = float((both["count"] * both["convbench_time_s"]).sum())
            theirs = float((both["count"] * both["peer_time_s"]).sum())
            boot = (count * draws(both, "peer")).sum(axis=0) / (count * draws(both, "convbench")).sum(axis=0)
            lo, hi = np.quantile(boot, [alpha, 1 - alpha])
            rec.update(convbench_total_s=ours, peer_total_s=theirs, ratio=theirs / ours,
                       ci_low=float(lo), ci_high=float(hi))
        rows.append(rec)
    return pd.DataFrame(rows)


def write_versus_peers(results: Any) -> tuple[Path, Any, Any] | None:
    """Write ``selection_peers.csv`` and ``selection_peers_network.csv`` into the
    results folder; ``None`` (nothing written) when the run measured no peer."""
    layers = versus_peers(results.summary, results.samples, results.env)
    if not len(layers):
        return None
    network = network_versus_peers(layers, results.summary)
    path = Path(results.path) / LAYERS_FILE
    layers.to_csv(path, index=False)
    network.to_csv(Path(results.path) / NETWORK_FILE, index=False)
    return path, layers, network


def fmt_ratio(ratio: float, lo: float, hi: float) -> str:
    """``1.23x [1.10, 1.31]`` (``-`` for no ratio)."""
    if not isinstance(ratio, float) or math.isnan(ratio):
        return "-"
    ci = f" [{lo:.2f}, {hi:.2f}]" if not (math.isnan(lo) or math.isnan(hi)) else ""
    return f"{ratio:.2f}x{ci}"


def report_lines(results: Any) -> list[str]:
    """The report's section on peers (markdown lines; empty when no peer was run)."""
    layers = versus_peers(results.summary, results.samples, results.env)
    if not len(layers):
        return []
    network = network_versus_peers(layers, results.summary)
    lines = ["## Against production peers", "",
             "The fastest convbench algorithm against the fastest peer (production library) on each layer: "
             "ratio = peer time / convbench time, so above 1 convbench is faster; 95% bootstrap interval. "
             "`implementation` names what really ran.", ""]
    lines += ["| layout | dtype | threads | convbench network | peers network | ratio [95% CI] | layers |",
              "|---|---|---|---|---|---|---|"]
    for r in network.to_dict("records"):
        lines.append(f"| {r['layout']} | {r['dtype']} | {r['threads']} | {_ms(r['convbench_total_s'])} | "
                     f"{_ms(r['peer_total_s'])} | {fmt_ratio(r['ratio'], r['ci_low'], r['ci_high'])} | "
                     f"{r['layers_compared']}/{r['layers']} |")
    lines += ["", "| layer | layout | dtype | threads | convbench (implementation) | peer (implementation) | "
              "ratio [95% CI] | verdict |", "|---|---|---|---|---|---|---|---|"]
    for r in layers.to_dict("records"):
        ours = f"{r['convbench']} ({r['convbench_impl']})" if r["convbench"] else "none ok"
        theirs = f"{r['peer']} ({r['peer_impl']})" if r["peer"] else "none ok"
        lines.append(f"| {r['layer']} | {r['layout']} | {r['dtype']} | {r['threads']} | {ours} | {theirs} | "
                     f"{fmt_ratio(r['ratio'], r['ci_low'], r['ci_high'])} | {r['verdict'] or '-'} |")
    return lines + [""]


def _ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1e3:.3g} ms"
