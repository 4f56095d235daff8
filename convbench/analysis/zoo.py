"""The zoo per network: each algorithm's total, the oracle selection, and what choosing per layer gains.

A zoo run's rows carry their credits in the ``network`` column
(:func:`convbench.zoo.parse_credits`): a shape shared by several networks
is one row per case, counted in each network as often as that network has
it. :func:`credited` gives one network's rows with ``count`` set to its own
occurrences, so every per-network number here is the run's usual analysis
of those rows: :func:`network_table` is
:func:`convbench.analysis.select.network_comparison` per network (each
algorithm's total, ``best per layer``, complete totals apart from partial
ones), and a network with layers the run did not measure at all (a
``--layers`` subset, a shard, an interrupted run; ``zoo.json`` lists every
layer of each network) has only partial totals.

:func:`selection_gains` asks, per network and side (convbench's own
algorithms; the production peers), how much faster the oracle selection (the
fastest eligible algorithm of that side on each layer) is than the best
single algorithm of that side that ran every layer: ``gain = total(best
single) / total(oracle)``, and, per network, convbench's oracle against the
peers' (``ratio`` > 1: convbench's is faster). The 95% interval is
:func:`convbench.bestof.best_vs_best_cis`'s: each candidate's median drawn
from its summary interval (a bootstrap over repetitions), the oracle's
choice redone on every layer in every resample, so the winner's curse of
picking the fastest of many is in the interval. The same case on both sides
(the best single algorithm is also an oracle candidate) is drawn once. The
choice of *which* single algorithm is best is made once, on the observed
totals, and not redone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..bestof import best_vs_best_cis
from ..groupstats import N_BOOT
from ..results.schema import with_defaults
from .select import NETWORK_KEYS, eligible, network_comparison

#: The sides of :func:`selection_gains`: whose algorithms, and what each row compares.
SIDES = ("convbench", "peers", "convbench vs peers")


def credits_column(summary: Any) -> list[dict[str, int]]:
    """Each row's credits (``{}`` for a row that is not a zoo layer)."""
    from ..zoo import parse_credits

    cache: dict[Any, dict[str, int]] = {}
    return [cache.setdefault(v, parse_credits(v)) for v in summary["network"].tolist()]


def networks_of(summary: Any, manifest: dict | None = None) -> list[str]:
    """The networks a run credits, in the zoo's order (then any others, as first met)."""
    from ..zoo import NETWORKS

    seen = dict.fromkeys(k for c in credits_column(summary) for k in c)
    seen.update(dict.fromkeys((manifest or {}).get("networks", {})))
    order = [n.key for n in NETWORKS if n.key in seen]
    return order + [k for k in seen if k not in order]


def is_zoo(summary: Any) -> bool:
    """Whether any row of ``summary`` is a zoo layer (carries credits)."""
    from ..zoo import CREDIT_PREFIX

    return "network" in summary.columns and bool(summary["network"].astype(str).str.startswith(CREDIT_PREFIX).any())


def credited(summary: Any, network: str) -> Any:
    """The rows of ``network``'s layers, ``count`` = how often ``network`` has each."""
    credit = np.array([c.get(network, 0) for c in credits_column(summary)], dtype=np.int64)
    mine = summary[credit > 0].copy()
    mine["count"] = credit[credit > 0]
    return mine


def expected_layers(manifest: dict | None, network: str) -> int | None:
    """How many distinct layers ``network`` has in the zoo (``zoo.json``); None when unknown."""
    layers = ((manifest or {}).get("networks", {}).get(network) or {}).get("layers")
    return len(layers) if isinstance(layers, list) else None


def network_table(summary: Any, manifest: dict | None = None) -> Any:
    """Per network x layout x dtype x threads x cache: :func:`network_comparison` of its rows.

    Columns: ``network`` and those of ``network_comparison`` (``choice``,
    ``total_s``, ``layers_ok``, ``layers``, ``complete``, ``vs_best``).
    ``layers`` is the network's layer count from ``manifest`` where known,
    so a layer never measured makes every total of that network partial.
    """
    import pandas as pd

    summary = with_defaults(summary)
    parts = []
    for net in networks_of(summary, manifest):
        rows = credited(summary, net)
        if not len(rows):
            continue
        table = network_comparison(rows)
        expected = expected_layers(manifest, net)
        if expected is not None:
            table["layers"] = np.maximum(table["layers"].to_numpy(), expected)
            table["complete"] = table["complete"].to_numpy(bool) & (table["layers_ok"] >= table["layers"]).to_numpy()
            table.loc[~table["complete"], "vs_best"] = math.nan
            best = table["choice"] == "best per layer"
            table.loc[best & table["complete"], "vs_best"] = 1.0
        parts.append(table.assign(network=net))
    if not parts:
        return pd.DataFrame(columns=["network", *NETWORK_KEYS, "choice", "total_s", "layers_ok", "layers",
                                     "complete", "vs_best"])
    out = pd.concat(parts, ignore_index=True)
    return out[["network", *[c for c in out.columns if c != "network"]]]


# -- what choosing per layer gains ------------------------------------------------------


def _log_se(cases: Any, confidence: float) -> np.ndarray:
    from .peers import _log_se as log_se  # one definition of a median's log-scale error from its CI

    return log_se(cases, confidence)


def _comparisons(df: Any, expected: int | None) -> list[dict]:
    """The three comparisons of one network and variant (:data:`SIDES`), with their candidate rows."""
    layers = list(dict.fromkeys(df["layer"]))
    n_layers = max(len(layers), expected or 0)
    ok = df[df["_ok"]]
    out = []
    for side in SIDES:
        rec: dict[str, Any] = dict(side=side, layers=n_layers, oracle="", oracle_s=math.nan, single="",
                                   single_s=math.nan, layers_compared=0, note="", a=None, b=None)
        if side == "convbench vs peers":
            a, b = ok[~ok["_peer"]], ok[ok["_peer"]]
            both = sorted(set(a["layer"]) & set(b["layer"]))
            rec["layers_compared"] = len(both)
            if not both:
                rec["note"] = "no layer has both a convbench algorithm and a peer ok"
            else:
                a, b = a[a["layer"].isin(both)], b[b["layer"].isin(both)]
                rec.update(oracle="convbench best per layer", single="peers' best per layer",
                           oracle_s=_oracle_total(a), single_s=_oracle_total(b), a=a, b=b)
                if len(both) < n_layers:
                    rec["note"] = f"over the {len(both)} of {n_layers} layers where both have an ok case"
            out.append(rec)
            continue
        mine = ok[ok["_peer"] == (side == "peers")]
        covered = mine["layer"].nunique()
        rec["layers_compared"] = covered
        if not len(mine):
            rec["note"] = "no ok case"
            out.append(rec)
            continue
        rec.update(oracle="best per layer", oracle_s=_oracle_total(mine))
        if covered < n_layers:
            rec["note"] = f"partial: the oracle covers {covered} of {n_layers} layers"
            out.append(rec)
            continue
        totals = {algo: float((g["count"] * g["time_median_s"]).sum()) for algo, g in mine.groupby("algorithm")
                  if g["layer"].nunique() == n_layers}
        if not totals:
            rec["note"] = "no single algorithm ran every layer"
            out.append(rec)
            continue
        single = min(totals, key=totals.__getitem__)
        rec.update(single=single, single_s=totals[single], a=mine, b=mine[mine["algorithm"] == single])
        out.append(rec)
    return out


def _oracle_total(cands: Any) -> float:
    return float(cands.sort_values("time_median_s").drop_duplicates("layer").eval("count * time_median_s").sum())


def selection_gains(summary: Any, manifest: dict | None = None, env: dict | None = None, *,
                    confidence: float = 0.95, n_boot: int = N_BOOT, seed: int = 0) -> Any:
    """Per network x variant x side: the oracle's total, the best single algorithm's, and
    ``gain`` = single / oracle with its 95% interval (the module docstring).

    Columns: ``network``, the variant keys, ``side`` (:data:`SIDES`),
    ``oracle``/``oracle_s``, ``single``/``single_s`` (for ``convbench vs
    peers``: convbench's and the peers' best per layer), ``gain``,
    ``ci_low``, ``ci_high``, ``layers``, ``layers_compared``, ``note`` (why
    there is no gain, or what it covers). Where the oracle leaves a layer
    out, or no single algorithm ran every layer, the gain is NaN: a partial
    total is never compared with a complete one.
    """
    import pandas as pd

    from .peers import peer_names

    summary = with_defaults(summary)
    peers = peer_names(summary["algorithm"].unique(), env)
    df = summary.assign(_ok=eligible(summary).to_numpy(), _peer=summary["algorithm"].isin(peers).to_numpy(),
                        _case=np.arange(len(summary)))
    raw_sigma = _log_se(df, confidence)
    sigma_case = np.nan_to_num(raw_sigma, nan=0.0, posinf=0.0)
    records: list[dict] = []
    for net in networks_of(summary, manifest):
        rows = credited(df, net)
        for key, g in rows.groupby(NETWORK_KEYS, sort=False):
            for rec in _comparisons(g, expected_layers(manifest, net)):
                records.append(dict(network=net, **dict(zip(NETWORK_KEYS, key)), **rec))
    columns = ["network", *NETWORK_KEYS, "side", "oracle", "oracle_s", "single", "single_s", "gain", "ci_low",
               "ci_high", "layers", "layers_compared", "note"]
    if not records:
        return pd.DataFrame(columns=columns)
    med, lay, side_b, case, weight_of, net_of = [], [], [], [], [], []
    for code, rec in enumerate(r for r in records if r["a"] is not None):
        rec["_code"] = code
        names = {layer: i for i, layer in enumerate(dict.fromkeys(rec["a"]["layer"]))}
        base = len(weight_of)
        for is_b, part in ((False, rec["a"]), (True, rec["b"])):
            med.append(part["time_median_s"].to_numpy(float))
            lay.append(base + part["layer"].map(names).to_numpy(np.int64))
            side_b.append(np.full(len(part), is_b))
            case.append(part["_case"].to_numpy(np.int64))
        counts = rec["a"].drop_duplicates("layer").set_index("layer")["count"]
        weight_of.extend(float(counts[layer]) for layer in names)
        net_of.extend([code] * len(names))
    if med:
        cand_case = np.concatenate(case)
        rng = np.random.default_rng(seed)

        def draw(at: np.ndarray) -> np.ndarray:  # one draw per case, shared by both sides
            ids, inverse = np.unique(cand_case[at], return_inverse=True)
            return (sigma_case[ids][:, None] * rng.standard_normal((len(ids), n_boot)))[inverse]

        _, (ratio, lo, hi) = best_vs_best_cis(
            np.concatenate(med), np.concatenate(lay), np.concatenate(side_b), draw, n_boot=n_boot,
            network=np.array(net_of, np.int64), weights=np.array(weight_of), mean="total",
            confidence=confidence, se=sigma_case[cand_case])
    out = []
    for rec in records:
        code = rec.pop("_code", None)
        a, b = rec.pop("a"), rec.pop("b")
        gain = low = high = math.nan
        if code is not None and code < len(ratio):
            gain, low, high = float(ratio[code]), float(lo[code]), float(hi[code])
            if not _winners_have_intervals(a, b, raw_sigma):
                low = high = math.nan
                rec["note"] = (rec["note"] + "; " if rec["note"] else "") + \
                    "no interval: a layer's fastest case has none (too few samples: a quick run?)"
        out.append({**rec, "gain": gain, "ci_low": low, "ci_high": high})
    return pd.DataFrame(out)[columns]


def _winners_have_intervals(a: Any, b: Any, sigma: np.ndarray) -> bool:
    """Whether each side's fastest case on every layer has a median interval (the gain's
    interval would otherwise pretend those medians exact)."""
    for side in (a, b):
        first = side.sort_values("time_median_s").drop_duplicates("layer")
        if not np.isfinite(sigma[first["_case"].to_numpy()]).all():
            return False
    return True


def network_summary(summary: Any, manifest: dict | None = None) -> Any:
    """Per network x variant: its layers, convolutions and GFLOP from the rows, the layers measured."""
    import pandas as pd

    summary = with_defaults(summary)
    rows = []
    for net in networks_of(summary, manifest):
        mine = credited(summary, net)
        first = mine.drop_duplicates(["layer", *NETWORK_KEYS])
        for key, g in first.groupby(NETWORK_KEYS, sort=False):
            rows.append(dict(network=net, **dict(zip(NETWORK_KEYS, key)), layers=len(g),
                             expected_layers=expected_layers(manifest, net) or len(g),
                             convs=int(g["count"].sum()), gflop=float((g["count"] * g["flops"]).sum()) / 1e9,
                             shared=int(sum(len(c) > 1 for c in credits_column(g)))))
    return pd.DataFrame(rows)
