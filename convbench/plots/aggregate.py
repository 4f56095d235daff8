"""The per-layer figures of a run too large to draw layer by layer (see :mod:`._scale`).

Each function here is what its per-layer twin (``figure_speedup``,
``figure_gflops``, ``figure_memory``, ``figure_accuracy``) draws when the run
has more than :data:`._scale.MAX_LAYERS` layers: one group per layer class
and algorithm, a bar for the class's centre, a dot per layer, the extreme
layers named, the aggregation said in the title.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import _common as c
from . import _scale as s


def _figure(n_panels: int, n_classes: int, n_algos: int) -> Figure:
    return c.new_figure(s.width_for(n_classes, n_algos), 3.6 * n_panels + 2.0)


def _legend(fig: Figure, algos: list[str], extra: list[Any]) -> None:
    handles = c.algorithm_handles(algos) + extra
    handles.append(Line2D([], [], ls="none", marker="o", ms=3, mfc="0.5", mec="0.2", label="one layer"))
    handles.append(c.absent_handle())
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8)


def speedup_by_class(summary: Any, table: Any, env: dict | None, baseline: str, algos: list[str],
                     confidence: float) -> Figure:
    """Speedup over the baseline per layer class: geometric mean (CI over layers), a dot per layer."""
    variants = c.variants_of(summary)
    classes = s.class_order(summary)
    fig = _figure(len(variants), len(classes), len(algos))
    c.title(fig, f"Speedup over {baseline} per layer class: geometric mean over layers "
                 f"({int(confidence * 100)}% bootstrap CI)\n{s.note(summary)}",
            env, summary["threads"].unique(), baseline)
    finite = table["speedup"][np.isfinite(table["speedup"]) & (table["speedup"] > 0)]
    log = len(finite) > 0 and finite.max() / max(finite.min(), 1e-12) > 8
    floor = 10 ** np.floor(np.log10(finite.min() / 1.5)) if log else None
    axes = fig.subplots(len(variants), 1, squeeze=False)[:, 0]
    for ax, v in zip(axes, variants):
        part = table[c.in_variant(table, v) & (table["algorithm"].isin(algos))]
        missing = s.class_panel(ax, part, "speedup", algos, classes, s.geomean_centre(confidence), log=log,
                                floor=floor)
        ax.axhline(1.0, color="black", lw=1.0, ls="--", zorder=3)
        if log:
            c.log_ticks(ax)
        ax.set_ylabel(f"speedup over {baseline} (x{', log' if log else ''})")
        ax.set_title(c.variant_label(v) + s.missing_note(missing, len(part)), fontsize=9, loc="left")
        ax.grid(axis="y", alpha=0.3)
    _legend(fig, algos, [Line2D([], [], color="black", ls="--", label=f"{baseline} (= 1.0)")])
    return fig


def gflops_by_class(summary: Any, env: dict | None) -> Figure:
    """GFLOP/s per layer class: median over layers, a dot per layer, the sgemm ceiling
    (GOP/s and no float ceiling on a ``u8s8`` panel)."""
    algos = c.algorithms_of(summary)
    variants = c.variants_of(summary)
    classes = s.class_order(summary)
    fig = _figure(len(variants), len(classes), len(algos))
    c.title(fig, f"Throughput per layer class: direct-equivalent {c.rate_headline(summary['dtype'].unique())}, "
                 f"median over layers\n"
                 f"{s.note(summary)}", env, summary["threads"].unique(), c.baseline_of(summary))
    axes = fig.subplots(len(variants), 1, squeeze=False)[:, 0]
    for ax, v in zip(axes, variants):
        part = summary[c.in_variant(summary, v)]
        missing = s.class_panel(ax, part, "gflops", algos, classes, s.median_centre(), valid=part["status"] == "ok")
        peak = np.nan if c.is_8bit(v[1]) else c.sgemm_peak(env, int(v[2]))  # a float ceiling
        if np.isfinite(peak):
            ax.axhline(peak, color="black", lw=1.2, ls="-.", zorder=3)
            ax.text(1.0, peak, f" sgemm {peak:.0f}", transform=ax.get_yaxis_transform(), va="center",
                    ha="left", fontsize=7, clip_on=False)
        ax.set_ylim(bottom=0)
        ax.set_ylabel(f"{c.rate_unit([v[1]])} (direct-equivalent)")
        ax.set_title(c.variant_label(v) + s.missing_note(missing, len(part)), fontsize=9, loc="left")
        ax.grid(axis="y", alpha=0.3)
    _legend(fig, algos, [Line2D([], [], color="black", ls="-.", label="calibrated sgemm ceiling")])
    return fig


def memory_by_class(df: Any, env: dict | None, panels: list[tuple]) -> Figure:
    """Analytic extra memory per layer class: geometric mean over layers, a dot per layer (log).

    An algorithm that does not know its workspace (a peer) is a "?" on the
    bottom edge where a class has no known value, never a 0.
    """
    df = df if "ws" in df.columns else memory_columns(df)
    algos = c.algorithms_of(df)
    classes = s.class_order(df)
    fig = _figure(len(panels), len(classes), len(algos))
    c.title(fig, "Extra memory per layer class: analytic workspace, geometric mean over layers (bars); "
                 "0 bytes on the bottom edge\n" + s.note(df) + "; measured bytes: summary.csv", env)
    floor = c.log_floor(df["ws"], 1.0)
    offsets = c.bar_geometry(len(algos))[1]
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    unknown_drawn = False
    for ax, (layout, dtype) in zip(axes, panels):
        part = df[(df["layout"] == layout) & (df["dtype"] == dtype)].copy()
        # a log axis has no 0: a workspace of 0 bytes (none needed) sits on the floor, as in the per-layer figure
        part["ws"] = part["ws"].where(part["ws"] != 0, floor)
        unknown = part["ws"].isna() & part["status"].isin(["ok", "failed"])
        missing = s.class_panel(ax, part[~unknown], "ws", algos, classes, s.geomean_centre(), log=True,
                                floor=floor, valid=part.loc[~unknown, "status"] != "skipped")
        known = set(zip(part.loc[~unknown, "algorithm"], s.class_of(part[~unknown], classes)))
        for algo, k in dict.fromkeys(zip(part.loc[unknown, "algorithm"], s.class_of(part[unknown], classes))):
            if (algo, k) not in known and algo in algos:
                x = classes.index(k) + offsets[algos.index(algo)]
                ax.plot([x], [floor], ls="none", marker="$?$", ms=7, color=c.color_of(algo, algos), clip_on=False)
                unknown_drawn = True
        ax.set_ylabel("extra memory (bytes, log)")
        ax.set_title(f"{layout.upper()}, {dtype}" + s.missing_note(missing, len(part)), fontsize=9, loc="left")
        ax.grid(axis="y", alpha=0.3)
    _legend(fig, algos, [Line2D([], [], ls="none", marker="$?$", ms=7, color="0.4", label="workspace unknown")]
            if unknown_drawn else [])
    return fig


def accuracy_by_class(df: Any, env: dict | None, panels: list[tuple]) -> Figure:
    """Max relative error per layer class: median over layers, a dot per layer (log), tolerances;
    a ``u8s8`` panel shows ``max_abs_err_lsb`` on a linear axis instead."""
    algos = c.algorithms_of(df)
    classes = s.class_order(df)
    fig = _figure(len(panels), len(classes), len(algos))
    eight = any(c.is_8bit(d) for _, d in panels)
    c.title(fig, "Accuracy per layer class: max relative error against float64, median over layers"
                 + ("; 8-bit panels: max error in LSB against the exact integer reference" if eight else "")
                 + "\n" + s.note(df), env)
    floor = c.log_floor(df["max_rel_err"], 1e-12)
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (layout, dtype) in zip(axes, panels):
        part = df[(df["layout"] == layout) & (df["dtype"] == dtype)]
        lsb = c.is_8bit(dtype)  # 8-bit: the error in output units, on a linear axis
        column = "max_abs_err_lsb" if lsb else "max_rel_err"
        if column not in part.columns:
            part = part.assign(**{column: np.nan})
        missing = s.class_panel(ax, part, column, algos, classes, s.median_centre(), log=not lsb,
                                floor=None if lsb else floor, valid=~part["status"].isin(["skipped", "error"]))
        failed = part[part["status"] == "failed"]
        if len(failed):
            ax.text(0.995, 0.98, f"{len(failed)} failed (beyond tolerance): "
                    + ", ".join(failed["layer"].astype(str).head(3)) + (" ..." if len(failed) > 3 else ""),
                    transform=ax.transAxes, ha="right", va="top", fontsize=7, color="red")
        if "error_tolerance" in part.columns:
            for tol in sorted(set(part["error_tolerance"].dropna())):
                if np.isfinite(tol) and tol > 0:
                    ax.axhline(tol, color="0.3", lw=0.9, ls="--")
        ax.set_ylabel("max error (LSB, exact reference)" if lsb else "max relative error (log)")
        ax.set_title(f"{layout.upper()}, {dtype}" + s.missing_note(missing, len(part)), fontsize=9, loc="left")
        ax.grid(axis="y", alpha=0.3)
    _legend(fig, algos, [Line2D([], [], color="0.3", ls="--", label="tolerance"),
                         Patch(fill=False, hatch=c.ABSENT_HATCH, edgecolor="0.4", label="skipped / error")])
    return fig


def winner_table_by_class(ax: Any, selection: Any, layers: list[str], variants: list[tuple], algos: list[str],
                          summary: Any) -> None:
    """The winner map's table of loose layers, one row per layer class instead of per layer.

    A cell is coloured by the algorithm that wins most of the class's layers
    and lists the winners' shares (every winner, so no layer goes uncounted).
    """
    from matplotlib.colors import to_rgb

    classes = s.class_order(summary)
    first = summary.drop_duplicates("layer").set_index("layer")
    sel = selection[selection["layer"].astype(str).isin(set(layers))].copy()
    sel["cls"] = s.class_of(first.loc[sel["layer"].astype(str)].reset_index(), classes).to_numpy()
    img = np.ones((len(classes), len(variants), 3))
    for yi, k in enumerate(classes):
        for xi, v in enumerate(variants):
            g = sel[(sel["cls"] == k) & (sel["layout"] == v[0]) & (sel["dtype"] == v[1]) & (sel["threads"] == v[2])]
            if g.empty:
                continue
            wins = g["algorithm"].replace("", "none ok").value_counts()
            top = wins.index[0]
            img[yi, xi] = (0.88, 0.88, 0.88) if top == "none ok" else to_rgb(c.color_of(top, algos))
            text = "\n".join(f"{a} {n / len(g):.0%}" for a, n in wins.items())
            ax.text(xi, yi, f"{text}\n({len(g)} layers)", ha="center", va="center", fontsize=6, color="black",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.6})
    ax.imshow(img, aspect="auto", zorder=0)
    ax.set_xticks(range(len(variants)), [c.variant_label(v) for v in variants], fontsize=7.5)
    ax.set_yticks(range(len(classes)), [k or "(no class)" for k in classes], fontsize=7.5)
    ax.set_title(f"{len(layers)} layers outside a sweep grid, per layer class (> {s.MAX_LAYERS} to list one by "
                 "one): share of layers each algorithm wins; colour = most wins", fontsize=8.5)


def memory_columns(df: Any) -> Any:
    """``df`` with its memory as the figures draw it: ``ws`` (analytic workspace, NaN:
    unknown), ``measured`` (measured extra memory, NaN: not measured) and ``method``
    (``tracemalloc``, ``rss`` or ``not measured``).

    A folder older than schema 4 has no ``memory_method``: its memory was
    tracemalloc's, which a peer's own allocator escapes, and its peers'
    ``workspace_bytes`` of 0 was a default, not a figure: both are unknown.
    """
    import pandas as pd

    out = df.copy()
    col = "measured_workspace_bytes" if "measured_workspace_bytes" in df.columns else "peak_bytes"
    ws = pd.to_numeric(df["workspace_bytes"], errors="coerce").astype(float)
    measured = pd.to_numeric(df[col], errors="coerce").astype(float)
    peer = df["algorithm"].map(lambda a: c.is_peer(str(a))).astype(bool)
    given = (df["memory_method"].fillna("").astype(str) if "memory_method" in df.columns
             else df["algorithm"].map(lambda a: ""))
    old = given == ""
    method = given.str.split(";").str[0].str.strip().where(~old, "tracemalloc")
    method = method.where(~method.str.startswith("not measured"), "not measured")
    method = method.where(~(old & peer), "not measured")
    out["ws"] = ws.where(~(old & peer & (ws == 0)))
    out["measured"] = measured.where(method.isin(["tracemalloc", "rss"]))
    out["method"] = method
    return out

