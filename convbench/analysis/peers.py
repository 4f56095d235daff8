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
on each layer, over the layers where both have one, with a bootstrap
interval that resamples every layer's samples. Picking the fastest of
several algorithms from the same samples favours the winner slightly on
each side (the "winner's curse"); both sides get the same treatment.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .compare import N_BOOT, VARIANT_KEYS, pair_ratio_cis, sample_groups, samples_by_case

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


def _best(rows: Any) -> Any | None:
    return rows.sort_values("time_median_s", kind="stable").iloc[0] if len(rows) else None


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
    ok = eligible(summary)
    rows, pairs = [], []
    for key, g in summary.groupby(VARIANT_KEYS, sort=False):
        good = g[ok.loc[g.index]]
        is_p = good["algorithm"].isin(peers)
        ours, theirs = _best(good[~is_p]), _best(good[is_p])
        if not g["algorithm"].isin(peers).any():
            continue  # no peer was run on this variant: nothing to compare
        first = g.iloc[0]
        rec = dict(zip(VARIANT_KEYS, key))
        rec.update(layer_class=first["layer_class"], count=int(first["count"]), convbench="", peer="",
                   convbench_time_s=math.nan, peer_time_s=math.nan, convbench_impl="", peer_impl="",
                   ratio=math.nan, ci_low=math.nan, ci_high=math.nan, ci_method="", verdict="")
        if ours is not None:
            rec.update(convbench=ours["algorithm"], convbench_time_s=float(ours["time_median_s"]),
                       convbench_impl=str(ours.get("implementation", "") or ""))
        if theirs is not None:
            rec.update(peer=theirs["algorithm"], peer_time_s=float(theirs["time_median_s"]),
                       peer_impl=str(theirs.get("implementation", "") or ""))
        if ours is not None and theirs is not None:
            rec["ratio"] = rec["peer_time_s"] / rec["convbench_time_s"]
            pairs.append((len(rows), str(theirs["case_id"]), str(ours["case_id"]),
                          theirs["time_ci_low_s"], theirs["time_ci_high_s"],
                          ours["time_ci_low_s"], ours["time_ci_high_s"]))
        rows.append(rec)
    if pairs:  # every pair's interval at once: one vectorised bootstrap
        at, peer_ids, our_ids, plo, phi, olo, ohi = (np.asarray(c) for c in zip(*pairs))
        groups = sample_groups(samples)
        lo, hi, how = pair_ratio_cis(groups, peer_ids, (plo.astype(float), phi.astype(float)),
                                     groups, our_ids, (olo.astype(float), ohi.astype(float)), confidence, seed)
        for i, a in enumerate(at):
            verdict = "tie" if not (lo[i] > 1 or hi[i] < 1) else ("convbench faster" if lo[i] > 1 else "peer faster")
            rows[a].update(ci_low=float(lo[i]), ci_high=float(hi[i]), ci_method=str(how[i]), verdict=verdict)
    return pd.DataFrame(rows)


def _boot_medians(times: np.ndarray | None, fallback: float, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    if times is None or times.size < 2:
        return np.full(n_boot, fallback)  # no samples: the median as a constant (no spread known)
    return np.median(times[rng.integers(0, times.size, (n_boot, times.size))], axis=1)


def network_versus_peers(layers: Any, summary: Any, samples: Any = None, confidence: float = 0.95,
                         n_boot: int = N_BOOT, seed: int = 0) -> Any:
    """Per layout x dtype x threads: sum of ``count x median`` of the best convbench
    algorithm per layer against that of the best peer per layer (``layers`` from
    :func:`versus_peers`), over the layers where both exist; ``ratio`` > 1 means
    convbench is faster, with a bootstrap interval; ``layers_compared`` / ``layers``."""
    import pandas as pd

    if layers is None or not len(layers):
        return pd.DataFrame(columns=["layout", "dtype", "threads", "convbench_total_s", "peer_total_s", "ratio",
                                     "ci_low", "ci_high", "layers_compared", "layers"])
    by_case = samples_by_case(samples)
    ids = {(r["layer"], r["layout"], r["dtype"], r["threads"], r["algorithm"]): str(r["case_id"])
           for r in summary[[*VARIANT_KEYS, "algorithm", "case_id"]].to_dict("records")}
    rng = np.random.default_rng(seed)
    alpha = (1 - confidence) / 2
    rows = []
    for key, g in layers.groupby(["layout", "dtype", "threads"], sort=False):
        both = g[(g["convbench"] != "") & (g["peer"] != "")]
        rec = dict(layout=key[0], dtype=key[1], threads=key[2], convbench_total_s=math.nan, peer_total_s=math.nan,
                   ratio=math.nan, ci_low=math.nan, ci_high=math.nan, layers_compared=len(both), layers=len(g))
        if len(both):
            ours = float((both["count"] * both["convbench_time_s"]).sum())
            theirs = float((both["count"] * both["peer_time_s"]).sum())
            boot_ours = np.zeros(n_boot)
            boot_theirs = np.zeros(n_boot)
            for r in both.to_dict("records"):
                k = (r["layer"], r["layout"], r["dtype"], r["threads"])
                boot_ours += r["count"] * _boot_medians(by_case.get(ids.get((*k, r["convbench"]), "")),
                                                        r["convbench_time_s"], rng, n_boot)
                boot_theirs += r["count"] * _boot_medians(by_case.get(ids.get((*k, r["peer"]), "")),
                                                          r["peer_time_s"], rng, n_boot)
            lo, hi = np.quantile(boot_theirs / boot_ours, [alpha, 1 - alpha])
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
    network = network_versus_peers(layers, results.summary, results.samples)
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
    network = network_versus_peers(layers, results.summary, results.samples)
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
