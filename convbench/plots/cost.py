"""What an algorithm costs besides time: extra memory, and accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import _common as c
from ._scale import aggregated
from .aggregate import accuracy_by_class, memory_by_class



def _log_panel(ax, floor: float, ylabel: str, title: str) -> None:
    """A log-scale panel whose bars start at ``floor`` (log axes have no 0)."""
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor)
    c.no_minor_ticks(ax)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9, loc="left")
    ax.grid(axis="y", alpha=0.3)

def _one_thread_count(summary: Any) -> Any:
    """Memory and error do not depend on threads: keep the lowest count per layout x dtype."""
    lowest = summary.groupby(["layout", "dtype"])["threads"].transform("min")
    return summary[summary["threads"] == lowest]


def _layout_dtype_panels(summary: Any) -> list[tuple]:
    return list(dict.fromkeys(zip(summary["layout"], summary["dtype"])))


def figure_memory(summary: Any, env: dict | None = None) -> Figure:
    """Extra memory per algorithm per layer (log scale), analytic and measured.

    Bars: the analytic workspace (``workspace_bytes``: im2col matrix,
    indirection buffer, transformed tiles, FFT planes). Black diamonds: the
    measured extra memory (``measured_workspace_bytes``; falls back to
    ``peak_bytes`` when that column is absent). A workspace of 0 bytes cannot
    sit on a log axis: it is a triangle on the bottom edge.
    """
    df = _one_thread_count(summary)
    if aggregated(df):  # too many layers for a bar each: per layer class
        return memory_by_class(df, env, _layout_dtype_panels(df))
    algos = c.algorithms_of(df)
    panels = _layout_dtype_panels(df)
    rows = c.layer_rows(df)
    measured_col = "measured_workspace_bytes" if "measured_workspace_bytes" in df.columns else "peak_bytes"
    panels = c.layer_panels(panels, rows)
    fig = c.new_figure(c.figure_width(max(len(r[0]) for r in rows), len(algos)), c.panel_height(len(panels), len(rows)))
    c.title(fig, "Extra memory per layer: analytic workspace (bars) and measured (diamonds)", env)
    width, offsets = c.bar_geometry(len(algos))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    floor = c.log_floor(df.loc[df["status"] == "ok", ["workspace_bytes", measured_col]], 1.0)
    for ax, ((layout, dtype), layers, classes) in zip(axes, panels):
        part = df[(df["layout"] == layout) & (df["dtype"] == dtype)]
        rows = {(r["layer"], r["algorithm"]): r for r in part.to_dict("records")}
        for j, algo in enumerate(algos):
            color = c.color_of(algo, algos)
            xs, ys, zx, mx, my = [], [], [], [], []
            for i, layer in enumerate(layers):
                r = rows.get((layer, algo))
                if r is None:
                    continue
                x = i + offsets[j]
                ws = float(r["workspace_bytes"]) if r["workspace_bytes"] == r["workspace_bytes"] else np.nan
                if r["status"] == "skipped" or not np.isfinite(ws):
                    c.mark_absent(ax, x, width, color)
                    continue
                if ws > 0:
                    xs.append(x)
                    ys.append(ws)
                else:
                    zx.append(x)
                m = float(r[measured_col]) if r[measured_col] == r[measured_col] else np.nan
                if r["status"] == "ok" and np.isfinite(m):
                    mx.append(x)
                    my.append(max(m, floor))
            ax.bar(xs, np.asarray(ys) - floor, bottom=floor, width=width, color=color, label=algo,
                   **c.peer_style(algo))
            if zx:
                ax.plot(zx, [floor] * len(zx), ls="none", marker="^", color=color, ms=5, clip_on=False)
            if mx:
                ax.plot(mx, my, ls="none", marker="D", ms=3.5, mfc="black", mec="white", mew=0.5, zorder=4)
        _log_panel(ax, floor, "extra memory (bytes, log)", f"{layout.upper()}, {dtype}")
        c.decorate_layer_axis(ax, layers, classes, show_labels=len(rows) > 1 or ax is axes[-1])
    handles = c.algorithm_handles(algos)
    handles += [
        Line2D([], [], ls="none", marker="D", mfc="black", mec="white", label="measured"),
        Line2D([], [], ls="none", marker="^", color="0.4", label="0 bytes (none needed)"),
        Patch(fill=False, hatch=c.ABSENT_HATCH, edgecolor="0.4", label="skipped (not run)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8)
    return fig


def plot_memory(summary: Any, env: dict | None, out: str | Path, *, formats: Any = None) -> list[Path]:
    """Write ``memory.png``/``.svg`` (see :func:`figure_memory`); returns the paths."""
    return c.save(figure_memory(summary, env), out, "memory", formats)


def figure_accuracy(summary: Any, env: dict | None = None) -> Figure:
    """Max relative error against the float64 reference, per algorithm per layer (log).

    Dashed lines: the tolerances in force (``error_tolerance``). A ``failed``
    case (beyond tolerance) is a large ringed marker; an error of exactly 0
    sits on the bottom edge; skipped cases are hatched.
    """
    df = _one_thread_count(summary)
    if aggregated(df):  # too many layers for a bar each: per layer class
        return accuracy_by_class(df, env, _layout_dtype_panels(df))
    algos = c.algorithms_of(df)
    panels = _layout_dtype_panels(df)
    rows = c.layer_rows(df)
    panels = c.layer_panels(panels, rows)
    fig = c.new_figure(c.figure_width(max(len(r[0]) for r in rows), len(algos)), c.panel_height(len(panels), len(rows)))
    c.title(fig, "Accuracy: max relative error against the float64 reference", env)
    width, offsets = c.bar_geometry(len(algos))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    floor = c.log_floor(df["max_rel_err"], 1e-12)
    for ax, ((layout, dtype), layers, classes) in zip(axes, panels):
        part = df[(df["layout"] == layout) & (df["dtype"] == dtype)]
        rows = {(r["layer"], r["algorithm"]): r for r in part.to_dict("records")}
        for j, algo in enumerate(algos):
            color = c.color_of(algo, algos)
            xs, ys, fx, fy = [], [], [], []
            for i, layer in enumerate(layers):
                r = rows.get((layer, algo))
                if r is None:
                    continue
                x = i + offsets[j]
                e = float(r["max_rel_err"])
                if r["status"] in ("skipped", "error") or not np.isfinite(e):
                    c.mark_absent(ax, x, width, color)
                    continue
                (fx if r["status"] == "failed" else xs).append(x)
                (fy if r["status"] == "failed" else ys).append(max(e, floor))
            ax.plot(xs, ys, ls="none", marker="o", ms=5, color=color, label=algo)
            if fx:
                ax.plot(fx, fy, ls="none", marker="o", ms=9, mfc=color, mec="red", mew=2.0)
        if "error_tolerance" in part.columns:
            for tol, g in part.groupby("error_tolerance"):
                if np.isfinite(tol) and tol > 0:
                    ax.axhline(tol, color="0.3", lw=0.9, ls="--")
                    names = ", ".join(dict.fromkeys(g["algorithm"]))
                    ax.text(1.0, tol, f" tol {tol:.0e}\n ({names})", transform=ax.get_yaxis_transform(),
                            fontsize=6, va="center", ha="left", clip_on=False)
        _log_panel(ax, floor, "max relative error (log)", f"{layout.upper()}, {dtype}")
        # A band above the highest tolerance and error for the layer-class labels,
        # which the tolerance line used to strike through.
        tops = [*part.get("error_tolerance", []), *part["max_rel_err"]]
        tops = [float(v) for v in tops if np.isfinite(v) and v > 0]
        if tops:
            ax.set_ylim(top=max(tops) * 30)
        c.decorate_layer_axis(ax, layers, classes, show_labels=len(rows) > 1 or ax is axes[-1])
    handles = c.algorithm_handles(algos)
    handles += [
        Line2D([], [], ls="none", marker="o", ms=8, mfc="white", mec="red", mew=2, label="failed (beyond tolerance)"),
        Line2D([], [], color="0.3", ls="--", label="tolerance"),
        Patch(fill=False, hatch=c.ABSENT_HATCH, edgecolor="0.4", label="skipped / error (no answer)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8)
    return fig


def plot_accuracy(summary: Any, env: dict | None, out: str | Path, *, formats: Any = None) -> list[Path]:
    """Write ``accuracy.png``/``.svg`` (see :func:`figure_accuracy`); returns the paths."""
    return c.save(figure_accuracy(summary, env), out, "accuracy", formats)
