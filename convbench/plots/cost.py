"""What an algorithm costs besides time: extra memory, and accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import ScaledTranslation

from . import _common as c
from ._scale import aggregated
from .aggregate import accuracy_by_class, memory_by_class, memory_columns



def _log_panel(ax, floor: float, ylabel: str, title: str) -> None:
    """A log-scale panel whose bars start at ``floor`` (log axes have no 0)."""
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor)
    c.no_minor_ticks(ax)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9, loc="left")
    ax.grid(axis="y", alpha=0.3)


def _lsb_panel(ax, top: float, title: str) -> None:
    """A linear panel of 8-bit errors in output units (0, 1, 2 ... LSB)."""
    ax.set_ylim(-0.3, max(2.5, top + 1.0))
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("max error (LSB, exact reference)")
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
    indirection buffer, transformed tiles, FFT planes). Diamonds: the
    measured extra memory (``measured_workspace_bytes``; falls back to
    ``peak_bytes`` when that column is absent), filled when tracemalloc
    measured it, hollow when the resident set did (``memory_method`` ``rss``:
    the peers). On the bottom edge, since a log axis has no 0: a triangle is
    an analytic workspace of 0 bytes, a "?" one the algorithm does not know
    (a peer's library), a ring a case measured by no method. Unknown is
    never drawn as 0 (:func:`~.aggregate.memory_columns`).
    """
    df = memory_columns(_one_thread_count(summary))
    if aggregated(df):  # too many layers for a bar each: per layer class
        return memory_by_class(df, env, _layout_dtype_panels(df))
    algos = c.algorithms_of(df)
    panels = _layout_dtype_panels(df)
    rows = c.layer_rows(df)
    panels = c.layer_panels(panels, rows)
    fig = c.new_figure(c.figure_width(max(len(r[0]) for r in rows), len(algos)), c.panel_height(len(panels), len(rows)))
    c.title(fig, "Extra memory per layer: analytic workspace (bars) and measured (diamonds)", env)
    width, offsets = c.bar_geometry(len(algos))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    floor = c.log_floor(df.loc[df["status"] == "ok", ["ws", "measured"]], 1.0)
    for ax, ((layout, dtype), layers, classes) in zip(axes, panels):
        part = df[(df["layout"] == layout) & (df["dtype"] == dtype)]
        rows = {(r["layer"], r["algorithm"]): r for r in part.to_dict("records")}
        lifted = ax.transData + ScaledTranslation(0, 9 / 72, fig.dpi_scale_trans)  # above a "?" on the edge
        for j, algo in enumerate(algos):
            color = c.color_of(algo, algos)
            xs, ys, zx, ux, nx, nlift = [], [], [], [], [], []
            measured: dict[str, tuple[list, list]] = {"tracemalloc": ([], []), "rss": ([], [])}
            for i, layer in enumerate(layers):
                r = rows.get((layer, algo))
                if r is None:
                    continue
                x = i + offsets[j]
                ws = float(r["ws"])
                if r["status"] == "skipped" or (not np.isfinite(ws) and r["status"] not in ("ok", "failed")):
                    c.mark_absent(ax, x, width, color)
                    continue
                if not np.isfinite(ws):
                    ux.append(x)
                elif ws > 0:
                    xs.append(x)
                    ys.append(ws)
                else:
                    zx.append(x)
                m = float(r["measured"])
                if r["status"] == "ok" and np.isfinite(m) and r["method"] in measured:
                    measured[r["method"]][0].append(x)
                    measured[r["method"]][1].append(max(m, floor))
                elif r["status"] == "ok":
                    (nlift if not np.isfinite(ws) else nx).append(x)
            ax.bar(xs, np.asarray(ys) - floor, bottom=floor, width=width, color=color, label=algo,
                   **c.peer_style(algo))
            if zx:
                ax.plot(zx, [floor] * len(zx), ls="none", marker="^", color=color, ms=5, clip_on=False)
            if ux:
                ax.plot(ux, [floor] * len(ux), ls="none", marker="$?$", color=color, ms=7, clip_on=False)
            for xs_, lift in ((nx, False), (nlift, True)):
                if xs_:
                    ax.plot(xs_, [floor] * len(xs_), ls="none", marker="o", mfc="none", mec="black", ms=4,
                            mew=0.9, clip_on=False, **({"transform": lifted} if lift else {}))
            for method, (mx, my) in measured.items():
                if mx:
                    ax.plot(mx, my, ls="none", marker="D", ms=3.5, mec="black" if method == "rss" else "white",
                            mfc="white" if method == "rss" else "black", mew=0.8 if method == "rss" else 0.5,
                            zorder=4)
        _log_panel(ax, floor, "extra memory (bytes, log)", f"{layout.upper()}, {dtype}")
        c.decorate_layer_axis(ax, layers, classes, show_labels=len(rows) > 1 or ax is axes[-1])
    handles = c.algorithm_handles(algos)
    handles += [
        Line2D([], [], ls="none", marker="D", mfc="black", mec="white", label="measured (tracemalloc)"),
        *([Line2D([], [], ls="none", marker="D", mfc="white", mec="black", mew=0.8,
                  label="measured (resident set, RSS)")] if (df["method"] == "rss").any() else []),
        Line2D([], [], ls="none", marker="^", color="0.4", label="analytic 0 bytes (none needed)"),
        *([Line2D([], [], ls="none", marker="$?$", color="0.4", ms=7, label="analytic unknown")]
          if (np.isnan(df["ws"]) & df["status"].isin(["ok", "failed"])).any() else []),
        *([Line2D([], [], ls="none", marker="o", mfc="none", mec="black", ms=4, label="not measured")]
          if ((df["status"] == "ok") & ~np.isfinite(df["measured"])).any() else []),
        Patch(fill=False, hatch=c.ABSENT_HATCH, edgecolor="0.4", label="skipped / no answer"),
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
    sits on the bottom edge; skipped cases are hatched. A ``u8s8`` panel shows
    ``max_abs_err_lsb`` instead, on a linear axis in output units (tolerance 1).
    """
    df = _one_thread_count(summary)
    if aggregated(df):  # too many layers for a bar each: per layer class
        return accuracy_by_class(df, env, _layout_dtype_panels(df))
    algos = c.algorithms_of(df)
    panels = _layout_dtype_panels(df)
    rows = c.layer_rows(df)
    panels = c.layer_panels(panels, rows)
    fig = c.new_figure(c.figure_width(max(len(r[0]) for r in rows), len(algos)), c.panel_height(len(panels), len(rows)))
    eight = any(c.is_8bit(d) for _, d in _layout_dtype_panels(df))
    c.title(fig, "Accuracy: max relative error against the float64 reference"
            + ("; 8-bit panels: max error in LSB against the exact integer reference" if eight else ""), env)
    width, offsets = c.bar_geometry(len(algos))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    floor = c.log_floor(df["max_rel_err"], 1e-12)
    for ax, ((layout, dtype), layers, classes) in zip(axes, panels):
        part = df[(df["layout"] == layout) & (df["dtype"] == dtype)]
        lsb = c.is_8bit(dtype)
        col = "max_abs_err_lsb" if lsb else "max_rel_err"
        rows = {(r["layer"], r["algorithm"]): r for r in part.to_dict("records")}
        for j, algo in enumerate(algos):
            color = c.color_of(algo, algos)
            xs, ys, fx, fy = [], [], [], []
            for i, layer in enumerate(layers):
                r = rows.get((layer, algo))
                if r is None:
                    continue
                x = i + offsets[j]
                e = float(r.get(col, np.nan))
                if r["status"] in ("skipped", "error") or not np.isfinite(e):
                    c.mark_absent(ax, x, width, color)
                    continue
                (fx if r["status"] == "failed" else xs).append(x)
                (fy if r["status"] == "failed" else ys).append(e if lsb else max(e, floor))
            ax.plot(xs, ys, ls="none", marker="o", ms=5, color=color, label=algo)
            if fx:
                ax.plot(fx, fy, ls="none", marker="o", ms=9, mfc=color, mec="red", mew=2.0)
        if "error_tolerance" in part.columns:
            for tol, g in part.groupby("error_tolerance"):
                if np.isfinite(tol) and tol > 0:
                    ax.axhline(tol, color="0.3", lw=0.9, ls="--")
                    names = ", ".join(dict.fromkeys(g["algorithm"]))
                    ax.text(1.0, tol, f" tol {tol:g} LSB" if lsb else f" tol {tol:.0e}\n ({names})",
                            transform=ax.get_yaxis_transform(), fontsize=6, va="center", ha="left", clip_on=False)
        if lsb:
            errs = part[col].dropna() if col in part.columns else []
            _lsb_panel(ax, float(max(errs, default=0.0)), f"{layout.upper()}, {dtype}")
            c.decorate_layer_axis(ax, layers, classes, show_labels=len(rows) > 1 or ax is axes[-1])
            continue
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
