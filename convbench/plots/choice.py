"""Which algorithm to choose: the winner map, and the network view."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..analysis.select import network_comparison, select_best
from . import _common as c
from ._scale import MAX_LAYERS, class_order
from .aggregate import winner_table_by_class

#: Grid dimensions a sweep may vary, as (label, column(s)); pairs collapse when equal.
_DIMS = [
    ("channels", ("in_channels", "out_channels")), ("size", ("height", "width")),
    ("kernel", ("kernel_h", "kernel_w")), ("stride", ("stride_h", "stride_w")),
    ("padding", ("pad_top", "pad_left")), ("dilation", ("dilation_h", "dilation_w")),
    ("groups", ("groups",)), ("batch", ("batch",)),
]
MAX_GRID_PANELS = 12


def _dims(rows: Any) -> dict[str, Any]:
    """Grid coordinates of each layer: square pairs collapse to one dimension."""
    out = {}
    for label, cols in _DIMS:
        if len(cols) == 2 and not (rows[cols[0]] == rows[cols[1]]).all():
            short = {"channels": ("in_channels", "out_channels"), "size": ("height", "width")}.get(label)
            names = short or (f"{label}_h", f"{label}_w")
            out[names[0]] = rows[cols[0]]
            out[names[1]] = rows[cols[1]]
        else:
            out[label] = rows[cols[0]]
    return out


def grid_families(summary: Any) -> tuple[list[dict], list[str]]:
    """Sweep grids found in the layer names (``family/...``) and the layers outside them.

    A family is the part of a layer name before ``/`` (how the config names
    grid layers) with at least two layers differing in some dimension. Each
    family is ``{"name", "x", "y", "rest", "coords"}``: the axis dimensions (the
    two with the most values), the remaining varying ones and every layer's
    coordinates.
    """
    first = summary.drop_duplicates("layer").reset_index(drop=True)
    fam_of = first["layer"].astype(str).map(lambda n: n.split("/", 1)[0] if "/" in n else "")
    families, loose = [], []
    for name in dict.fromkeys(fam_of):
        rows = first[fam_of == name]
        if not name or len(rows) < 2:
            loose += list(rows["layer"].astype(str))
            continue
        dims = _dims(rows)
        varying = sorted((d for d, v in dims.items() if v.nunique() > 1), key=lambda d: -dims[d].nunique())
        if not varying:
            loose += list(rows["layer"].astype(str))
            continue
        coords = {str(layer): {d: int(dims[d].iloc[i]) for d in varying} for i, layer in enumerate(rows["layer"])}
        families.append({"name": name, "x": varying[0], "y": varying[1] if len(varying) > 1 else None,
                         "rest": varying[2:], "coords": coords})
    return families, loose


def _cell(ax: Any, x: int, y: int, row: dict | None, algos: list[str]) -> tuple[float, float, float]:
    if row is None:
        return (1.0, 1.0, 1.0)
    if not row["algorithm"]:
        ax.text(x, y, "none ok", ha="center", va="center", fontsize=6.5, color="0.3")
        return (0.88, 0.88, 0.88)
    rgb = to_rgb(c.color_of(row["algorithm"], algos))
    margin = row["margin"]
    label = row["algorithm"] + (f"\nx{margin:.2f}" if np.isfinite(margin) else "")
    if not row["clear_winner"]:
        label += "\n(tie)"
    dark = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 0.55
    ax.text(x, y, label, ha="center", va="center", fontsize=6.5, color="white" if dark else "black")
    return rgb


def figure_winner_map(summary: Any, env: dict | None = None) -> Figure:
    """Which algorithm is fastest for each layer (fastest ``ok`` case within tolerance).

    Where the run's layers form sweep grids (names ``family/...``), each grid
    is a heatmap over its two main dimensions (one panel per value of any
    further dimension and per layout x dtype x threads); other layers form a
    layer x variant table. Cells say the winner and its margin (runner-up
    time / winner time); "(tie)" when their confidence intervals overlap.
    """
    selection = select_best(summary)
    algos = c.algorithms_of(summary)
    variants = c.variants_of(summary)
    families, loose = grid_families(summary)
    by_key = {(r["layer"], r["layout"], r["dtype"], r["threads"], r.get("cache", "warm")): r
              for r in selection.to_dict("records")}
    panels = []  # (title, family, rest-values, variant)
    for fam in families:
        rest_values = [sorted({co[d] for co in fam["coords"].values()}) for d in fam["rest"]]
        for combo in itertools.product(*rest_values):
            for v in variants:
                panels.append((fam, dict(zip(fam["rest"], combo)), v))
    dropped = max(0, len(panels) - MAX_GRID_PANELS)
    panels = panels[:MAX_GRID_PANELS]
    n_cols = min(3, max(1, len(panels)))
    n_rows = math.ceil(len(panels) / n_cols) if panels else 0
    by_class = len(loose) > MAX_LAYERS  # a row per layer class instead of per layer
    n_rows_table = 2.2 * len(class_order(summary)) if by_class else len(loose)  # cells of several lines
    table_h = 0.32 * n_rows_table + 1.2 if loose else 0
    fig = c.new_figure(max(4.2 * n_cols, 3 + 1.6 * len(variants)), 3.6 * n_rows + table_h + 2.0)
    shown = f" ({dropped} more grid panels not drawn: see selection.csv)" if dropped else ""
    c.title(fig, "Winner map: the fastest correct algorithm per layer" + shown, env, summary["threads"].unique())
    ratios = [3.6] * n_rows + ([table_h] if loose else [])
    if not ratios:
        c.no_data(fig, "no layers")
        return fig
    sub = fig.subfigures(len(ratios), 1, height_ratios=ratios, squeeze=False)[:, 0]
    for k, (fam, rest, variant) in enumerate(panels):
        ax = sub[k // n_cols].add_subplot(1, n_cols, k % n_cols + 1)
        coords = {l: co for l, co in fam["coords"].items() if all(co[d] == v for d, v in rest.items())}
        xs = sorted({co[fam["x"]] for co in coords.values()})
        ys = sorted({co[fam["y"]] for co in coords.values()}) if fam["y"] else [0]
        img = np.ones((len(ys), len(xs), 3))
        for layer, co in coords.items():
            xi = xs.index(co[fam["x"]])
            yi = ys.index(co[fam["y"]]) if fam["y"] else 0
            img[yi, xi] = _cell(ax, xi, yi, by_key.get((layer, *variant)), algos)
        ax.imshow(img, origin="lower", aspect="auto", zorder=0)
        ax.set_xticks(range(len(xs)), [str(x) for x in xs])
        ax.set_xlabel(fam["x"])
        if fam["y"]:
            ax.set_yticks(range(len(ys)), [str(y) for y in ys])
            ax.set_ylabel(fam["y"])
        else:
            ax.set_yticks([])
        extra = ", ".join(f"{d}={v}" for d, v in rest.items())
        ax.set_title(f"grid {fam['name']}" + (f" ({extra})" if extra else "") + f"\n{c.variant_label(variant)}",
                     fontsize=8.5)
    if loose and by_class:
        winner_table_by_class(sub[-1].add_subplot(), selection, loose, variants, algos, summary)
    elif loose:
        ax = sub[-1].add_subplot()
        img = np.ones((len(loose), len(variants), 3))
        for yi, layer in enumerate(loose):
            for xi, v in enumerate(variants):
                img[yi, xi] = _cell(ax, xi, yi, by_key.get((layer, *v)), algos)
        ax.imshow(img, aspect="auto", zorder=0)
        ax.set_xticks(range(len(variants)), [c.variant_label(v) for v in variants], fontsize=7.5)
        ax.set_yticks(range(len(loose)), loose, fontsize=7.5)
        ax.set_title("layers outside a sweep grid" if families else "every layer", fontsize=8.5)
    winners = list(dict.fromkeys(a for a in selection["algorithm"] if a))
    handles = [Patch(color=c.color_of(a, algos), label=f"{a} (peer)" if c.is_peer(a) else a) for a in winners]
    handles.append(Patch(color="0.88", label="no correct ok case"))
    note = f" ({dropped} more grid panels not drawn)" if dropped else ""
    # as many columns as the figure's width holds: a wider legend was cut off at both edges
    fig.legend(handles=handles, loc="outside lower center", fontsize=8,
               ncol=max(1, min(len(handles), 6, int(fig.get_figwidth() // 1.8))),
               title="winner; xN = runner-up time / winner time" + note, title_fontsize=8)
    return fig


def plot_winner_map(summary: Any, env: dict | None, out: str | Path, *, formats: Any = None) -> list[Path]:
    """Write ``winner_map.png``/``.svg`` (see :func:`figure_winner_map`); returns the paths."""
    return c.save(figure_winner_map(summary, env), out, "winner_map", formats)


def figure_network(summary: Any, env: dict | None = None) -> Figure:
    """Network time per algorithm (sum of ``count x median`` over layers), and best per layer.

    The "best per layer" bar is split into the time of each chosen algorithm.
    An algorithm that is not ``ok`` on every layer has no network time: its
    bar is hatched and labelled with the layers it covers (it leaves the
    others out, so it is not comparable).
    """
    selection = select_best(summary)
    net = network_comparison(summary, selection)
    algos = c.algorithms_of(summary)
    variants = c.variants_of(summary)
    n_choices = max(1, net.groupby(["layout", "dtype", "threads"]).size().max()) if len(net) else 1
    fig = c.new_figure(10, (0.32 * n_choices + 1.2) * len(variants) + 1.6)
    c.title(fig, "Network time: one algorithm everywhere vs the best per layer (weighted by count)",
            env, summary["threads"].unique())
    axes = fig.subplots(len(variants), 1, squeeze=False)[:, 0]
    for ax, variant in zip(axes, variants):
        part = net[c.in_variant(net, variant)]
        sel = selection[c.in_variant(selection, variant)]
        labels = list(part["choice"])
        best_total = part.loc[part["choice"] == "best per layer", "total_s"]
        best_total = float(best_total.iloc[0]) * 1e3 if len(best_total) else math.nan
        for y, r in enumerate(part.to_dict("records")):
            total_ms = r["total_s"] * 1e3
            if r["choice"] == "best per layer":
                left = 0.0
                chosen = sel[sel["algorithm"] != ""]
                for algo, g in chosen.groupby("algorithm", sort=False):
                    w = float((g["count"] * g["time_median_s"]).sum()) * 1e3
                    ax.barh(y, w, left=left, color=c.color_of(algo, algos), edgecolor="black", lw=0.6,
                            hatch=c.PEER_HATCH if c.is_peer(algo) else None)
                    left += w
            elif r["complete"]:
                ax.barh(y, total_ms, color=c.color_of(r["choice"], algos), **c.peer_style(r["choice"]))
            elif np.isfinite(total_ms):
                ax.barh(y, total_ms, fill=False, hatch=c.ABSENT_HATCH, edgecolor=c.color_of(r["choice"], algos))
            if np.isfinite(total_ms):
                note = f" {total_ms:.3g} ms"
                if r["choice"] != "best per layer" and r["complete"] and np.isfinite(r["vs_best"]):
                    note += f"  (x{r['vs_best']:.2f} the best-per-layer time)"
                if not r["complete"]:
                    note += f"  covers {r['layers_ok']}/{r['layers']} layers: not a network time"
                ax.text(total_ms, y, note, va="center", fontsize=7.5)
            else:
                ax.text(0, y, "  no ok layer", va="center", fontsize=7.5, color="0.4")
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("network time per inference (ms, sum of count x median)")
        xmax = np.nanmax(part["total_s"].to_numpy(dtype=float)) * 1e3 if len(part) else 1.0
        ax.set_xlim(0, xmax * 1.6 if np.isfinite(xmax) and xmax > 0 else 1.0)
        if np.isfinite(best_total):
            ax.axvline(best_total, color="black", ls=":", lw=0.8)
        ax.set_title(c.variant_label(variant), fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
    winners = list(dict.fromkeys(a for a in selection["algorithm"] if a))
    handles = [Patch(facecolor=c.color_of(a, algos), edgecolor="black", hatch=c.PEER_HATCH if c.is_peer(a) else None,
                     label=f"best per layer: {a}" + (" (peer)" if c.is_peer(a) else "")) for a in winners]
    handles.append(Patch(fill=False, hatch=c.ABSENT_HATCH, edgecolor="0.4", label="incomplete (some layers not ok)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=8)
    return fig


def plot_network(summary: Any, env: dict | None, out: str | Path, *, formats: Any = None) -> list[Path]:
    """Write ``network.png``/``.svg`` (see :func:`figure_network`); returns the paths."""
    return c.save(figure_network(summary, env), out, "network", formats)
