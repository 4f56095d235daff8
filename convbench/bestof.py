"""The best of several against the best of several, with the uncertainty of the choice.

Pure functions of arrays (no clock), like :mod:`convbench.groupstats`, whose
bootstrap of medians they reuse. The question: per layer, is the fastest of
side A (e.g. convbench's 7-14 algorithms) faster than the fastest of side B
(e.g. 2-3 production libraries), and for a network of layers? The estimate
is ``ratio = min median(B) / min median(A)`` (> 1: A's best is faster).

The winner's curse: the lowest of several noisy medians is biased low, more
so the more candidates a side has; with every candidate equally fast, 10
against 3 puts ``ratio`` about 0.7 standard errors of a median above 1 on
every layer, and a network adds the bias of every layer while its noise
averages out. An interval of the two winners' medians alone ("given the
choice") misses the truth ever more often as layers are added. Redoing the
choice in every resample and taking percentiles is no cure: the resampled
candidates are spread apart by their own noise, the choice is rarely close
in the bootstrap world, and the percentile interval moves further *away*
from the truth (10 against 3 candidates, 6 layers, equal speeds: a network
interval holding 1 in 36% of seeds).

What is done instead, with ``r_i = m_i* / m_i`` the relative bootstrap
median of candidate ``i`` (its samples resampled, its median recomputed, over
its observed median ``m_i``) and ``b`` a side's observed winner: for the true
best ``j`` of a side, ``min_i r_i <= min_i m_i / min_i mu_i <= r_j`` holds
whatever the true times ``mu`` are. So the side's best can be at most as far
below its truth as the luckiest candidate's noise, and at most as far above
as one candidate's noise. In every resample each side gets

- ``low``: the selection redone among the candidates treated as tied with
  the winner, ``min_i exp(d_i) r_i*``, where ``d_i`` is how far candidate
  ``i`` lies behind ``b`` (log of the medians' ratio) shrunk by ``KAPPA``
  standard errors of that difference and floored at 0 (generalised moment
  selection: a candidate within ``KAPPA`` standard errors of the winner
  counts as tied with it, one far behind never wins a resample);
- ``high``: the winner's own ``r_b*`` (one candidate's noise, no choice);

and the interval is the pivot's: ``ratio / q_{1-a}(high_B / low_A)`` to
``ratio / q_a(low_B / high_A)``. A network's total time (or the geometric
mean of its layers' ratios) sums these per layer in every resample the same
way. Measured with every candidate equally fast (lognormal noise, 100 seeds):
10 against 3 candidates on 6 or 16 layers, the network interval holds 1 in
every seed (the winners' interval given the choice: 92-97% on 4-8 layers,
79-81% on 16); 30 against 1, or 1 against 30, on 30 layers: every one of 60
seeds (KAPPA 1: 85-90%; KAPPA 0, the choice redone in the observed
configuration: none). With one side 20% faster
the 16-layer interval excludes 1 in every seed; where each side's winner is
clear the interval is the winners' own, as narrow as before. Where the
candidates tie it is wider than the winners' own by about each side's
selection bias: the price of not knowing which of them is fastest.

The draws are each candidate's own: independent per-call samples through
:func:`convbench.groupstats.median_replicates` (exact), or rounds resampled
jointly for every candidate of a layer where they were measured interleaved
(``paired``), or a log-normal of a summary CI (a results folder's network).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from . import groupstats as gs

#: Standard errors within which a candidate counts as tied with its side's winner.
KAPPA = 2.0
#: Standard errors beyond KAPPA past which a candidate could win no resample (not drawn).
PRUNE = 8.0


def log_relative_replicates(groups: gs.Groups, rows: Any, sigma: Any, n_boot: int,
                            rng: np.random.Generator) -> np.ndarray:
    """Logs of bootstrap medians over the observed median, shape ``(len(rows), n_boot)``.

    Row ``i`` resamples group ``rows[i]`` of ``groups`` where it has at least
    2 values (:func:`convbench.groupstats.median_replicates`); elsewhere it is
    normal with ``sigma[i]`` (the log-scale standard error of that median,
    e.g. from a summary CI; NaN counts as 0).
    """
    rows = np.asarray(rows, dtype=np.int64)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), rows.shape)
    out = np.empty((len(rows), n_boot))
    boot = groups.size_of(rows) >= 2
    if boot.any():
        g = rows[boot]
        off, n = groups.offsets[g], groups.sizes[g]
        med = (groups.values[off + (n - 1) // 2] + groups.values[off + n // 2]) / 2.0
        drawn = np.log(gs.median_replicates(groups, g, n_boot, rng))
        drawn -= np.log(med)[:, None]
        out[boot] = drawn
    if (~boot).any():
        s = np.nan_to_num(sigma[~boot], nan=0.0, posinf=0.0)
        out[~boot] = s[:, None] * rng.standard_normal((int((~boot).sum()), n_boot))
    return out


def best_vs_best_cis(
    medians: Any, layer: Any, side_b: Any, draw: Callable[[np.ndarray], np.ndarray], *, n_boot: int = gs.N_BOOT,
    network: Any = None, weights: Any = None, mean: str = "total", confidence: float = 0.95, kappa: float = KAPPA,
    se: Any = None,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """Selection-aware intervals of ``min median(B) / min median(A)`` for many layers at once.

    Candidate ``i`` has observed median ``medians[i]``, belongs to comparison
    ``layer[i]`` (codes ``0..L-1``) and to side B where ``side_b[i]``, else A.
    ``draw(rows)`` returns the logs of the candidates' bootstrap medians over
    their observed medians, shape ``(len(rows), n_boot)`` (e.g.
    :func:`log_relative_replicates`); it is called
    with whole layers, every candidate of a layer in one call. Candidates
    with a median that is not positive are left out.

    Returns ``((ratio, low, high) per layer code, network)``: NaN where a
    layer lacks a side. ``network`` (a code per layer, with ``weights`` per
    layer, default 1) adds ``(ratio, low, high)`` per network code over its
    layers with both sides: ``mean="total"`` sets ``sum(w * best B)`` against
    ``sum(w * best A)``, ``"geometric"`` takes the weighted geometric mean of
    the layers' ratios. The method is the module docstring's.

    ``se`` (optional): each median's standard error on the log scale, a
    rough one (e.g. from a summary CI; NaN: unknown). A candidate more than
    ``KAPPA + PRUNE`` of them behind its side's winner could win no resample
    and is not drawn at all: on a results folder most are that slow.
    """
    if mean not in ("total", "geometric"):
        raise ValueError(f"mean must be 'total' or 'geometric', got {mean!r}")
    m = np.asarray(medians, dtype=float)
    lay = np.asarray(layer, dtype=np.int64)
    side = np.asarray(side_b, dtype=bool)
    codes = None if network is None else np.asarray(network, dtype=np.int64)
    n_layers = max(int(lay.max()) + 1 if lay.size else 0, 0 if codes is None else len(codes))
    codes = np.zeros(n_layers, np.int64) if codes is None else np.r_[codes, np.full(n_layers - len(codes), -1)]
    w = np.ones(n_layers) if weights is None else np.asarray(weights, dtype=float)
    alpha = (1.0 - confidence) / 2.0
    ok = np.isfinite(m) & (m > 0) & (lay >= 0)
    present = np.zeros((n_layers, 2), dtype=bool)
    present[lay[ok], side[ok].astype(int)] = True
    both = present.all(axis=1)
    idx = np.flatnonzero(ok)
    idx = idx[both[lay[idx]]]
    order = idx[np.lexsort((m[idx], side[idx], lay[idx]))]  # by layer, side A then B, fastest first
    key = lay[order] * 2 + side[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(order) else np.zeros(0, np.int64)
    if se is not None and len(order):  # leave out who cannot win: far behind by their own noise
        s_log = np.asarray(se, dtype=float)[order]
        winner = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        behind = np.log(m[order]) - np.log(m[order][winner])
        order = order[~(behind > (kappa + PRUNE) * np.hypot(s_log, s_log[winner]))]  # NaN: kept
        key = lay[order] * 2 + side[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    best = np.full((n_layers, 2), math.nan)
    best[lay[order][starts], side[order][starts].astype(int)] = m[order][starts]
    ratio = best[:, 1] / best[:, 0]
    lo, hi = np.full(n_layers, math.nan), np.full(n_layers, math.nan)
    n_net = int(codes.max()) + 1 if codes.size and network is not None else 0
    acc = np.zeros((4, n_net, n_boot))  # per network and resample: highB, lowA, lowB, highA (summed)
    layer_starts = starts[0::2]  # each layer begins with its side A
    for part in _layer_chunks(layer_starts, len(order)):
        rows = order[part]
        logs = draw(rows)
        first = starts[(starts >= part.start) & (starts < part.stop)] - part.start
        winner = np.repeat(first, np.diff(np.r_[first, len(rows)]))
        d = np.log(m[rows]) - np.log(m[rows][winner])
        tied = np.zeros_like(d)
        rest = np.flatnonzero(d > 0) if math.isfinite(kappa) else np.zeros(0, np.int64)  # winners stay at 0
        if len(rest):
            se = np.std(logs[rest] - logs[winner[rest]], axis=1)
            tied[rest] = np.maximum(0.0, d[rest] - kappa * se)
        low = np.minimum.reduceat(logs + tied[:, None], first, axis=0)
        high = logs[first]
        low_a, low_b, high_a, high_b = low[0::2], low[1::2], high[0::2], high[1::2]
        at = lay[rows][first[0::2]]
        lo[at] = ratio[at] / np.exp(np.quantile(high_b - low_a, 1.0 - alpha, axis=1))
        hi[at] = ratio[at] / np.exp(np.quantile(low_b - high_a, alpha, axis=1))
        at_net = codes[at]
        if network is None or not (at_net >= 0).any():
            continue
        if mean == "total":
            parts = [w[at, None] * best[at, k, None] * np.exp(v) for k, v in ((1, high_b), (0, low_a), (1, low_b), (0, high_a))]
        else:
            parts = [w[at, None] * (high_b - low_a), w[at, None] * (low_b - high_a)]
        net = np.argsort(at_net, kind="stable")
        net = net[at_net[net] >= 0]
        net_first = np.flatnonzero(np.r_[True, np.diff(at_net[net]) != 0])
        for k, values in enumerate(parts):
            acc[k, at_net[net][net_first]] += np.add.reduceat(values[net], net_first, axis=0)
    if network is None:
        return (ratio, lo, hi), None
    used = both & (codes >= 0)
    wsum = np.bincount(codes[used], weights=w[used], minlength=n_net)
    with np.errstate(divide="ignore", invalid="ignore"):
        if mean == "total":
            tot_a = np.bincount(codes[used], weights=(w * best[:, 0])[used], minlength=n_net)
            tot_b = np.bincount(codes[used], weights=(w * best[:, 1])[used], minlength=n_net)
            net_ratio = tot_b / tot_a
            q_hi = np.log(acc[0] / tot_b[:, None]) - np.log(acc[1] / tot_a[:, None])
            q_lo = np.log(acc[2] / tot_b[:, None]) - np.log(acc[3] / tot_a[:, None])
        else:
            net_ratio = np.exp(np.bincount(codes[used], weights=(w * np.log(ratio))[used], minlength=n_net) / wsum)
            q_hi, q_lo = acc[0] / wsum[:, None], acc[1] / wsum[:, None]
    net_lo, net_hi = np.full(n_net, math.nan), np.full(n_net, math.nan)
    has = wsum > 0
    if has.any():
        net_lo[has] = net_ratio[has] / np.exp(np.quantile(q_hi[has], 1.0 - alpha, axis=1))
        net_hi[has] = net_ratio[has] / np.exp(np.quantile(q_lo[has], alpha, axis=1))
    return (ratio, lo, hi), (np.where(has, net_ratio, math.nan), net_lo, net_hi)


def _layer_chunks(layer_starts: np.ndarray, n_rows: int, size: int = gs.CHUNK) -> list[slice]:
    """Slices of whole layers with about ``size`` candidates each (one layer alone may exceed it)."""
    bounds = np.r_[layer_starts, n_rows]
    out, begin = [], 0
    for i in range(1, len(bounds)):
        if bounds[i] - bounds[begin] >= size or i == len(bounds) - 1:
            out.append(slice(int(bounds[begin]), int(bounds[i])))
            begin = i
    return out


def _candidates(layers: Sequence[tuple[Sequence[Any], Sequence[Any]]], rng: np.random.Generator, n_boot: int,
                paired: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Medians, layer codes, sides and relative draws of every candidate of ``layers``."""
    meds, lay, side, draws = [], [], [], []
    for code, (side_a, side_b) in enumerate(layers):
        arrays = [np.asarray(x, dtype=float).ravel() for x in (*side_a, *side_b)]
        is_b = [False] * len(side_a) + [True] * len(side_b)
        if paired:  # rounds measured together are resampled together; a round with a non-finite time goes
            if len({a.size for a in arrays}) > 1:
                raise ValueError("paired: every candidate of a layer needs one time per round")
            table = np.array(arrays).reshape(len(arrays), -1)
            table = table[:, np.isfinite(table).all(axis=0)]
            med = np.median(table, axis=1) if table.shape[1] else np.full(len(arrays), math.nan)
            pick = rng.integers(0, max(table.shape[1], 1), size=(n_boot, table.shape[1]))
            rel = (np.log(np.median(table[:, pick], axis=2) / med[:, None]) if table.shape[1]
                   else np.zeros((len(arrays), n_boot)))
        else:
            groups = gs.Groups.from_arrays(np.concatenate(arrays) if arrays else np.zeros(0),
                                           np.repeat(np.arange(len(arrays)), [a.size for a in arrays]))
            rows = groups.rows(np.arange(len(arrays)))
            med = np.array([np.median(a[np.isfinite(a)]) if np.isfinite(a).any() else math.nan for a in arrays])
            rel = log_relative_replicates(groups, rows, 0.0, n_boot, rng)
        meds.append(med)
        lay.append(np.full(len(arrays), code))
        side.append(np.array(is_b, dtype=bool))
        draws.append(rel.reshape(len(arrays), n_boot))
    if not meds:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(0, bool), np.zeros((0, n_boot))
    return np.concatenate(meds), np.concatenate(lay), np.concatenate(side), np.concatenate(draws)


def best_vs_best(side_a: Sequence[Any], side_b: Sequence[Any], rng: np.random.Generator | int | None = None,
                 n_boot: int = gs.N_BOOT, *, confidence: float = 0.95, paired: bool = False) -> tuple[float, float, float]:
    """``(ratio, low, high)``: how many times faster side A's best is than side B's, on one layer.

    ``side_a``/``side_b``: each candidate's per-call times (1-D arrays);
    ``ratio = min median(B) / min median(A)`` (> 1: A's best is faster), with
    a ``confidence`` interval that carries the uncertainty of picking each
    side's best (module docstring). ``paired``: the arrays are rounds
    measured interleaved (entry ``k`` of every array from round ``k``), and
    rounds are resampled together. ``rng``: a Generator or a seed (default 0).
    NaN when a side has no finite time.
    """
    per_layer, _ = _layers_cis([(side_a, side_b)], rng, n_boot, None, "total", confidence, paired)
    return float(per_layer[0][0]), float(per_layer[1][0]), float(per_layer[2][0])


def network_best_vs_best(
    layers: Sequence[tuple[Sequence[Any], Sequence[Any]]], rng: np.random.Generator | int | None = None,
    n_boot: int = gs.N_BOOT, *, weights: Sequence[float] | None = None, mean: str = "geometric",
    confidence: float = 0.95, paired: bool = False,
) -> tuple[float, float, float]:
    """``(ratio, low, high)`` over a network: ``layers`` is one ``(side_a, side_b)`` per layer.

    ``mean="geometric"``: the (``weights``-weighted) geometric mean of the
    layers' best-vs-best ratios; ``"total"``: ``sum(w * best B) / sum(w *
    best A)``, a network time with ``weights`` as each layer's count. Layers
    without a finite time on both sides are left out. The choice of each
    side's best is redone in every resample on every layer (see
    :func:`best_vs_best` and the module docstring).
    """
    _, per_net = _layers_cis(layers, rng, n_boot, weights, mean, confidence, paired)
    return float(per_net[0][0]), float(per_net[1][0]), float(per_net[2][0])


def _layers_cis(layers: Sequence[tuple[Sequence[Any], Sequence[Any]]], rng: Any, n_boot: int, weights: Any,
                mean: str, confidence: float, paired: bool) -> tuple[Any, Any]:
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)
    med, lay, side, rel = _candidates(layers, gen, n_boot, paired)
    return best_vs_best_cis(med, lay, side, lambda rows: rel[rows], n_boot=n_boot,
                            network=np.zeros(len(layers), np.int64), weights=weights, mean=mean,
                            confidence=confidence)
