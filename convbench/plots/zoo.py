"""The zoo's figures: each network's totals, and the paper's pairs per layer against intensity.

:func:`figure_zoo_networks` draws one panel per network (and variant): a bar
per algorithm that ran every layer, its total stacked by layer class, the
oracle selection (the fastest algorithm on each layer) as the first bar with
a dotted line at its total, and partial totals as hatched outlines after
the complete ones, never ranked with them. :func:`figure_zoo_classes` draws
one panel per pair of :data:`convbench.analysis.zoo_classes.PAIRS`: the
speedup of every layer against its arithmetic intensity, coloured by class,
filled where its interval excludes 1.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import _common as c

#: How many panels a row of a zoo figure holds.
COLUMNS = 3


def class_colors(classes: Any) -> dict[str, Any]:
    """A fixed colour per layer class, in the classes' sorted order (tab20)."""
    from matplotlib import colormaps

    from ..analysis.zoo_classes import class_order

    cmap = colormaps["tab20"]
    ordered = sorted(set(classes), key=class_order)
    return {cls: cmap(i % 20) for i, cls in enumerate(ordered)}


def _class_times(rows: Any) -> Any:
    """Per choice: count x median summed by layer class (the oracle: each layer's fastest eligible)."""
    from ..analysis.select import eligible

    ok = rows[eligible(rows).to_numpy()].assign(w=lambda d: d["count"] * d["time_median_s"])
    per_algo = ok.groupby(["algorithm", "layer_class"])["w"].sum()
    best = ok.sort_values("time_median_s").drop_duplicates("layer")
    return per_algo, best.groupby("layer_class")["w"].sum()


def figure_zoo_networks(summary: Any, env: dict | None = None, manifest: dict | None = None) -> Figure:
    """Per network and variant: the totals, stacked by layer class, with the oracle marked."""
    from ..analysis.zoo import credited, network_table
    from ..zoo import title_of

    table = network_table(summary, manifest)
    table = table[np.isfinite(table["total_s"].to_numpy(float))]  # a choice with no ok layer draws nothing
    panels = list(table.groupby(["network", "layout", "dtype", "threads", "cache"], sort=False))
    colors = class_colors(summary["layer_class"].astype(str))
    cols = max(1, min(COLUMNS, len(panels)))
    n_rows = max(1, math.ceil(len(panels) / cols))
    per_panel = max((len(g) for _, g in panels), default=1)
    fig = c.new_figure(5.4 * cols + 1, n_rows * (0.22 * per_panel + 1.3) + 1.4)
    c.title(fig, "The zoo: each network's time per algorithm, stacked by layer class; first bar: the best per layer",
            env, summary["threads"].unique())
    axes = fig.subplots(n_rows, cols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, ((net, *variant), part) in zip(axes, panels):
        rows = credited(summary[c.in_variant(summary, tuple(variant))], net)
        per_algo, oracle = _class_times(rows)
        part = part.assign(_partial=~part["complete"].astype(bool), _first=part["choice"] != "best per layer")
        part = part.sort_values(["_first", "_partial", "total_s"])
        best = part.loc[part["choice"] == "best per layer", "total_s"]
        best_ms = best.iloc[0] * 1e3 if len(best) else math.nan
        # an axis up to the slowest total hides the rest behind one slow algorithm: clip at 4x the oracle
        xmax = np.nanmax(part["total_s"].to_numpy(float)) * 1e3
        xmax = min(xmax, 4 * best_ms) if math.isfinite(best_ms) else xmax
        labels = []
        for y, r in enumerate(part.to_dict("records")):
            oracle_bar = r["choice"] == "best per layer"
            labels.append(r["choice"] + ("" if r["complete"] else " (partial)"))
            total_ms = r["total_s"] * 1e3
            if not r["complete"]:
                ax.barh(y, min(total_ms, xmax), fill=False, hatch=c.ABSENT_HATCH, edgecolor="0.5", lw=0.6)
                ax.text(min(total_ms, xmax), y, f" {r['layers_ok']}/{r['layers']} layers", va="center",
                        fontsize=6.5, color="0.4")
                continue
            shares = oracle if oracle_bar else per_algo.get(r["choice"])
            left = 0.0
            for cls, w in (shares.items() if shares is not None else []):
                width = max(0.0, min(w * 1e3, xmax - left))
                ax.barh(y, width, left=left, color=colors.get(cls, "0.7"),
                        edgecolor="black" if oracle_bar else "white", lw=0.8 if oracle_bar else 0.3)
                left += width
            vs = "" if oracle_bar or not math.isfinite(r["vs_best"]) else f" x{r['vs_best']:.2f}"
            clipped = " (axis clipped)" if total_ms > xmax * 1.0001 else ""
            ax.text(min(total_ms, xmax), y, f" {total_ms:.3g} ms{vs}{clipped}", va="center", fontsize=6.5)
        if math.isfinite(best_ms):
            ax.axvline(best_ms, color="black", ls=":", lw=0.8)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, xmax * 1.45 if math.isfinite(xmax) and xmax > 0 else 1.0)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("ms per inference (sum of count x median)", fontsize=7)
        ax.set_title(f"{title_of(net)}: {c.variant_label(tuple(variant))}", fontsize=8.5, loc="left")
        ax.grid(axis="x", alpha=0.3)
    handles = [Patch(color=col, label=cls) for cls, col in colors.items()]
    handles += [Patch(facecolor="white", edgecolor="black", label="best per layer (oracle; dotted line)"),
                Patch(fill=False, hatch=c.ABSENT_HATCH, edgecolor="0.5", label="partial: not a network time")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 8), fontsize=7.5,
               title="layer class; xN = total / best-per-layer total", title_fontsize=8)
    return fig


def figure_zoo_classes(speedups: Any, env: dict | None = None) -> Figure:
    """Per pair: each layer's speedup against its arithmetic intensity, coloured by class."""
    pairs = list(dict.fromkeys(speedups["pair"])) if len(speedups) else []
    colors = class_colors(speedups["layer_class"].astype(str)) if len(speedups) else {}
    variants = list(dict.fromkeys(zip(speedups["layout"], speedups["dtype"], speedups["threads"],
                                      speedups["cache"]))) if len(speedups) else []
    markers = {v: m for v, m in zip(variants, ["o", "s", "^", "D", "v", "P"] * 4)}
    n_rows = max(1, math.ceil(len(pairs) / 4))
    fig = c.new_figure(16, 3.3 * n_rows + 1.6)
    c.title(fig, "The paper's pairs on every zoo layer: speedup against arithmetic intensity (filled: 95% CI "
                 "excludes 1)", env, sorted(speedups["threads"].unique()) if len(speedups) else None)
    axes = fig.subplots(n_rows, 4, squeeze=False).ravel()
    for ax in axes[len(pairs):]:
        ax.set_visible(False)
    for ax, pair in zip(axes, pairs):
        part = speedups[speedups["pair"] == pair]
        for (cls, *variant), g in part.groupby(["layer_class", "layout", "dtype", "threads", "cache"]):
            decided = (g["result"] != "tie").to_numpy()
            col = colors[cls]
            mk = markers[tuple(variant)]
            ax.scatter(g["intensity"][decided], g["speedup"][decided], s=16, color=col, marker=mk, lw=0.3,
                       edgecolor="black")
            ax.scatter(g["intensity"][~decided], g["speedup"][~decided], s=16, facecolor="none", marker=mk,
                       edgecolor=col, lw=0.9)
        ax.axhline(1.0, color="black", lw=0.8)
        _log_axes(ax)
        n = len(part)
        faster = int((part["result"] == "faster").sum())
        ax.set_title(f"{pair}: faster on {faster}/{n} layers", fontsize=8.5, loc="left")
        ax.set_xlabel("FLOP per byte (input + weights + output)", fontsize=7.5)
        ax.set_ylabel("speedup (above 1: the first is faster)", fontsize=7.5)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, which="both", lw=0.4)
    if not pairs:
        ax = fig.subplots()
        ax.text(0.5, 0.5, "no pair of the paper ran ok on the same layer", ha="center", va="center")
        ax.set_axis_off()
    handles: list[Any] = [Patch(color=col, label=cls) for cls, col in colors.items()]
    if len(variants) > 1:
        handles += [Line2D([], [], ls="", marker=m, color="0.3", label=c.variant_label(v)) for v, m in markers.items()]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 10), fontsize=7.5)
    return fig


def _log_axes(ax: Any) -> None:
    """Log-log axes with plain tick labels at 1, 1.5, 2, 3, 5, 7 x 10^k (the default minor labels overlap)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for axis, scale in ((ax.xaxis, ax.set_xscale), (ax.yaxis, ax.set_yscale)):
        scale("log")
        axis.set_major_locator(LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())


def plot_zoo(summary: Any, speedups: Any, env: dict | None, out: str | Path, *, manifest: dict | None = None,
             formats: Any = None) -> list[Path]:
    """Write ``zoo_networks`` and ``zoo_classes`` (PNG, or ``formats``) into the folder ``out``."""
    paths = c.save(figure_zoo_networks(summary, env, manifest), out, "zoo_networks", formats)
    return paths + c.save(figure_zoo_classes(speedups, env), out, "zoo_classes", formats)
