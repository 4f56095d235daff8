"""Figures against the machine's limits: the roofline (thread scaling: :mod:`.scaling`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..results.schema import specs_of
from . import _common as c

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]


def traffic_bytes(summary: Any) -> Any:
    """Compulsory memory traffic of each case, in bytes.

    Input + weights + output, plus the analytic workspace counted twice
    (written once, read once). A lower bound: caches may force more, and an
    unknown workspace (a peer's, an empty cell) counts as none.
    """
    sizes = [s.input_bytes + s.weight_bytes + s.output_bytes for s in specs_of(summary)]
    ws = summary["workspace_bytes"].fillna(0).astype(float)
    return np.asarray(sizes, dtype=float) + 2 * ws


def figure_roofline(summary: Any, env: dict | None = None) -> Figure:
    """Arithmetic intensity against GFLOP/s, with the measured roof.

    Intensity is direct-equivalent FLOPs per byte of compulsory traffic
    (:func:`traffic_bytes`); the roof is ``min(sgemm GFLOP/s, intensity x
    copy GB/s)``, both as measured on the machine: sgemm at the panel's thread
    count, the best of the run's calibrations when env.json has several
    (:func:`~._common.sgemm_peak`); without a calibration, the best rate any
    case reached. One panel per thread count; colour is the algorithm, marker
    shape the layer class. Only ``ok`` cases are points. 8-bit (``u8s8``)
    cases get panels of their own, in GOP/s and operations per byte, whose
    roof is the best rate any 8-bit case reached (the calibration is a float
    sgemm): 8-bit and float rates never share an axis.
    """
    ok = summary[summary["status"] == "ok"].copy()
    ok["intensity"] = ok["flops"] / traffic_bytes(ok)
    threads = sorted(summary["threads"].unique())
    kinds = sorted({c.is_8bit(d) for d in summary["dtype"]})
    panels = [(t, eight) for t in threads for eight in kinds]
    algos = c.algorithms_of(summary)
    classes = list(dict.fromkeys(summary["layer_class"].astype(str)))
    fig = c.new_figure(5.5 * len(panels) + 2.4, 5.6)
    c.title(fig, "Roofline: arithmetic intensity against throughput", env, threads)
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=len(kinds) == 1)[0]
    bw = c.memory_bandwidth(env)
    roof_label = "roof (measured)"
    for ax, (t, eight) in zip(axes, panels):
        part = ok[(ok["threads"] == t) & (ok["dtype"].map(c.is_8bit) == eight)]
        unit = "GOP/s" if eight else "GFLOP/s"
        for algo in algos:
            a = part[part["algorithm"] == algo]
            for k, cls in enumerate(classes):
                g = a[a["layer_class"].astype(str) == cls]
                if len(g):
                    ax.plot(g["intensity"], g["gflops"], ls="none", marker=MARKERS[k % len(MARKERS)], ms=5,
                            color=c.color_of(algo, algos), alpha=0.8, label=algo)
        lo = max(part["intensity"].min() / 2, 1e-2) if len(part) else 0.1
        hi = part["intensity"].max() * 2 if len(part) else 100.0
        x = np.logspace(np.log10(lo), np.log10(hi), 200)
        peak = np.nan if eight else c.sgemm_peak(env, int(t))
        peak_text = f"sgemm {peak:.0f} GFLOP/s ({c.sgemm_peak_label(env)})"
        if not np.isfinite(peak) and len(part):  # no calibration (none is 8-bit): the best rate any case reached
            peak = float(part["gflops"].max())
            peak_text = f"best observed rate {peak:.0f} {unit} ({'8-bit' if eight else 'no calibration'})"
            if not eight:
                roof_label = "roof (best observed rate; no calibration)"
        if np.isfinite(peak) or np.isfinite(bw):
            # full_like: without a bandwidth the roof is flat, still one value per x
            roof = np.minimum(np.full_like(x, peak if np.isfinite(peak) else np.inf), x * bw if np.isfinite(bw) else np.inf)
            ax.plot(x, roof, color="black", lw=1.5)
            text = [peak_text] if np.isfinite(peak) else []
            if np.isfinite(bw):
                text.append(f"copy {bw:.1f} GB/s")
            ax.text(0.02, 0.98, "roof, measured here:\n" + "\n".join(text), transform=ax.transAxes, va="top",
                    fontsize=8, bbox={"fc": "white", "ec": "none", "alpha": 0.8})
        ax.set_xscale("log")
        ax.set_yscale("log")
        c.no_minor_ticks(ax, "x")
        c.no_minor_ticks(ax, "y")
        ax.set_xlabel(f"arithmetic intensity ({'OP' if eight else 'FLOP'} / byte of compulsory traffic)")
        ax.set_title(f"{t} thread{'s' if t != 1 else ''}" + (", 8-bit (u8s8)" if eight else ""), fontsize=9, loc="left")
        ax.grid(alpha=0.3, which="both")
        if ax is axes[0] or len(kinds) > 1:
            ax.set_ylabel(f"{unit} (direct-equivalent, log)")
    handles = [Line2D([], [], ls="none", marker="o", color=c.color_of(a, algos), label=a) for a in algos]
    if len(classes) > 1 or classes[0]:
        handles += [Line2D([], [], ls="none", marker=MARKERS[k % len(MARKERS)], color="0.3",
                           label=f"class: {cls or '(none)'}") for k, cls in enumerate(classes)]
    handles.append(Line2D([], [], color="black", label=roof_label))
    # One column at the right: a row of 6 below was wider than the figure and was cut at both sides.
    fig.legend(handles=handles, loc="outside right upper", ncol=1, fontsize=8)
    return fig


def plot_roofline(summary: Any, env: dict | None, out: str | Path, *, formats: Any = None) -> list[Path]:
    """Write ``roofline.png``/``.svg`` (see :func:`figure_roofline`); returns the paths."""
    return c.save(figure_roofline(summary, env), out, "roofline", formats)
