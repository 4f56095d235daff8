"""How far convbench is from production: its best algorithm against the best peer.

A *peer* is a production library measured in the same run through the same
interface (``torch``, ``onednn``, ``onnxruntime``; see
:class:`convbench.algorithms.peer.Peer`). For every layer variant (layer x
layout x dtype x threads), :func:`versus_peers` sets the fastest eligible
convbench algorithm (``ok`` and within tolerance, as in
:func:`convbench.analysis.select.select_best`) against the fastest eligible
peer: ``ratio`` = peer median / convbench median, so > 1 means convbench is
faster.

:func:`network_versus_peers` weighs the layers by ``count``: the network
time with the best convbench algorithm on each layer against the best peer
on each layer, over the layers where both have one.

Picking the fastest of several algorithms from the same samples that
measure it favours the winner (the "winner's curse": the lowest of several
noisy medians is biased low), the more so the more candidates a side has:
convbench's 7-14 algorithms against 2-3 peers do not cancel. So neither
interval is the two winners' alone: the choice of each side's best is redone
in every resample, on every layer, with every eligible candidate of both
sides resampled (:mod:`convbench.bestof` says how, and why a percentile
interval of the redone choice would not do). Per layer the resampled unit is
the per-call samples of every candidate (a log-normal from the summary CI
for a case without samples; ``ci_method`` says ``summary-ci`` then); per
network every candidate's median is drawn from its summary CI, a bootstrap
over repetitions that carries the drift between them. Both are 95%.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .. import groupstats as gs
from ..bestof import best_vs_best_cis, log_relative_replicates
from .compare import N_BOOT, VARIANT_KEYS, sample_groups
from ..results.schema import with_defaults

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
    on that side and a NaN ratio. The interval carries the choice of both
    winners (the module docstring): ``ci_method`` is ``bootstrap`` where
    every eligible candidate of the variant has per-call samples.
    """
    import pandas as pd

    from .select import eligible

    summary = with_defaults(summary)
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
    out["ratio"] = out["peer_time_s"] / out["convbench_time_s"]
    out["ci_low"], out["ci_high"], out["ci_method"], out["verdict"] = math.nan, math.nan, "", ""
    both = np.flatnonzero(((out["convbench"] != "") & (out["peer"] != "")).to_numpy())
    if len(both):  # every layer's interval at once, the choice of both winners redone per resample
        cands = _candidates(df[df["_ok"]], out.iloc[both])
        groups = sample_groups(samples)
        rows = groups.rows(cands["case_id"].astype(str).to_numpy())
        sigma = _log_se(cands, confidence)
        rng = np.random.default_rng(seed)
        (_, lo, hi), _ = best_vs_best_cis(
            cands["time_median_s"].to_numpy(dtype=float), cands["_layer"].to_numpy(), cands["_peer"].to_numpy(),
            lambda at: log_relative_replicates(groups, rows[at], sigma[at], N_BOOT, rng), n_boot=N_BOOT,
            confidence=confidence, se=sigma)
        sampled = np.bincount(cands["_layer"], weights=groups.size_of(rows) >= 2, minlength=len(both))
        how = np.where(sampled == np.bincount(cands["_layer"], minlength=len(both)), "bootstrap", "summary-ci")
        verdict = np.where(lo > 1, "convbench faster", np.where(hi < 1, "peer faster", "tie"))
        out.loc[both, "ci_low"], out.loc[both, "ci_high"] = lo, hi
        out.loc[both, "ci_method"], out.loc[both, "verdict"] = how, verdict
    return out.drop(columns=[c for c in out.columns if c.startswith("_")])


def network_versus_peers(layers: Any, summary: Any, confidence: float = 0.95,
                         n_boot: int = N_BOOT, seed: int = 0, env: dict | None = None) -> Any:
    """Per layout x dtype x threads: sum of ``count x median`` of the best convbench
    algorithm per layer against that of the best peer per layer (``layers`` from
    :func:`versus_peers`), over the layers where both exist; ``ratio`` > 1 means
    convbench is faster; ``layers_compared`` / ``layers``.

    The interval draws every eligible candidate's median, on both sides, from
    its own interval in the summary (a bootstrap over repetitions, so it
    carries the drift between them; log-normal), picks each side's best again
    on every layer in every resample, and sums the layers
    (:func:`convbench.bestof.best_vs_best_cis`): a second or two for tens of
    thousands of cases.
    """
    import pandas as pd

    from .select import NETWORK_KEYS, eligible

    columns = [*NETWORK_KEYS, "convbench_total_s", "peer_total_s", "ratio",
               "ci_low", "ci_high", "layers_compared", "layers"]
    if layers is None or not len(layers):
        return pd.DataFrame(columns=columns)
    summary, layers = with_defaults(summary), with_defaults(layers)

    peers = peer_names(summary["algorithm"].unique(), env)
    df = summary.assign(_peer=summary["algorithm"].isin(peers).to_numpy())
    layers = layers.reset_index(drop=True)
    both = np.flatnonzero(((layers["convbench"] != "") & (layers["peer"] != "")).to_numpy())
    cands = _candidates(df[eligible(df).to_numpy()], layers.iloc[both])
    net = layers.groupby(NETWORK_KEYS, sort=False).ngroup().to_numpy()
    rng = np.random.default_rng(seed)
    sigma = _log_se(cands, confidence)
    none = gs.Groups.empty()
    _, (ratio, lo, hi) = best_vs_best_cis(
        cands["time_median_s"].to_numpy(dtype=float), cands["_layer"].to_numpy(), cands["_peer"].to_numpy(),
        lambda at: log_relative_replicates(none, np.full(len(at), -1), sigma[at], n_boot, rng), n_boot=n_boot,
        network=net[both] if len(both) else np.zeros(0, np.int64), weights=layers["count"].to_numpy(float)[both],
        mean="total", confidence=confidence, se=sigma)
    rows = []
    for code, (key, g) in enumerate(layers.groupby(NETWORK_KEYS, sort=False)):
        pair = g[(g["convbench"] != "") & (g["peer"] != "")]
        rec = dict(**dict(zip(NETWORK_KEYS, key)), convbench_total_s=math.nan, peer_total_s=math.nan,
                   ratio=math.nan, ci_low=math.nan, ci_high=math.nan, layers_compared=len(pair), layers=len(g))
        if len(pair) and code < len(ratio):
            rec.update(convbench_total_s=float((pair["count"] * pair["convbench_time_s"]).sum()),
                       peer_total_s=float((pair["count"] * pair["peer_time_s"]).sum()),
                       ratio=float(ratio[code]), ci_low=float(lo[code]), ci_high=float(hi[code]))
        rows.append(rec)
    return pd.DataFrame(rows, columns=columns)


def _candidates(eligible_rows: Any, compared: Any) -> Any:
    """The eligible cases of the ``compared`` variants, each with ``_layer``: its variant's
    position in ``compared`` (``_peer`` says its side)."""
    import pandas as pd

    at = pd.MultiIndex.from_frame(compared[VARIANT_KEYS]).get_indexer(
        pd.MultiIndex.from_frame(eligible_rows[VARIANT_KEYS])) if len(compared) else np.full(len(eligible_rows), -1)
    return eligible_rows.assign(_layer=at)[at >= 0].reset_index(drop=True)


def _log_se(cases: Any, confidence: float) -> np.ndarray:
    """Each case's median's standard error on the log scale, from its summary CI (NaN when none)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.log(cases["time_ci_high_s"].to_numpy(dtype=float))
                - np.log(cases["time_ci_low_s"].to_numpy(dtype=float))) / (2 * z)


def write_versus_peers(results: Any) -> tuple[Path, Any, Any] | None:
    """Write ``selection_peers.csv`` and ``selection_peers_network.csv`` into the
    results folder; ``None`` (nothing written) when the run measured no peer."""
    layers = versus_peers(results.summary, results.samples, results.env)
    if not len(layers):
        return None
    network = network_versus_peers(layers, results.summary, env=results.env)
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
    network = network_versus_peers(layers, results.summary, env=results.env)
    lines = ["## Against production peers", "",
             "The fastest convbench algorithm against the fastest peer (production library) on each layer: "
             "ratio = peer time / convbench time, so above 1 convbench is faster; 95% bootstrap interval that "
             "picks each side's fastest again in every resample, so it carries the uncertainty of the choice. "
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
