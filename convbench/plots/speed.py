"""Per-layer speed figures: speedup over the baseline, and GFLOP/s against the sgemm ceiling
(GOP/s on 8-bit panels, which have no float ceiling drawn)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..analysis.compare import ratio_table
from . import _common as c
from ._scale import aggregated
from .aggregate import gflops_by_class, speedup_by_class


def figure_speedup(
    summary: Any, env: dict | None = None, *, samples: Any = None, baseline: str | None = None,
    confidence: float = 0.95,
) -> Figure:
    """Speedup over the baseline per layer: grouped bars per algorithm, CI whiskers.

    Past :data:`convbench.plots._scale.MAX_LAYERS` layers, one group per
    layer class instead (:func:`convbench.plots.aggregate.speedup_by_class`).

    ``speedup = median(baseline) / median(algorithm)`` on the same layer,
    layout, dtype and thread count. The whiskers are the ``confidence``
    interval of that ratio from a seeded bootstrap of the per-sample times
    (``samples``); without samples, the ratio of the summary's median CI
    bounds (see :func:`convbench.analysis.compare.ratio_table`). One panel per
    layout x dtype x threads; layers grouped by ``layer_class``.
    """
    baseline = baseline or c.baseline_of(summary)
    table = ratio_table(summary, samples, reference=baseline, confidence=confidence)
    algos = [a for a in c.algorithms_of(summary) if a != baseline]
    if algos and aggregated(summary):  # too many layers for a bar each: per layer class
        return speedup_by_class(summary, table, env, baseline, algos, confidence)
    variants = c.variants_of(summary)
    rows = c.layer_rows(summary)
    panels = c.layer_panels(variants, rows)
    fig = c.new_figure(c.figure_width(max(len(r[0]) for r in rows), len(algos)), c.panel_height(len(panels), len(rows)))
    c.title(fig, f"Speedup over {baseline} per layer ({int(confidence * 100)}% CI whiskers)",
            env, summary["threads"].unique(), baseline)
    if not algos:
        c.no_data(fig, f"only the baseline ({baseline}) was run: nothing to compare")
        return fig
    finite = table["speedup"][np.isfinite(table["speedup"])]
    log = len(finite) > 0 and finite.max() / max(finite.min(), 1e-12) > 8
    width, offsets = c.bar_geometry(len(algos))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    moved = c.flagged(summary)
    for ax, (variant, layers, classes) in zip(axes, panels):
        part = table[c.in_variant(table, variant)]
        rows = {(r["layer"], r["algorithm"]): r for r in part.to_dict("records")}
        for j, algo in enumerate(algos):
            color = c.color_of(algo, algos)
            xs, ys, lo, hi = [], [], [], []
            for i, layer in enumerate(layers):
                r = rows.get((layer, algo))
                if r is None:
                    continue  # not in the sweep for this variant: nothing to mark
                x = i + offsets[j]
                if not np.isfinite(r["speedup"]):
                    c.mark_absent(ax, x, width, color)
                    continue
                xs.append(x)
                ys.append(r["speedup"])
                # clipped at 0: a percentile interval may miss the point estimate by a rounding error
                lo.append(max(r["speedup"] - r["ci_low"], 0.0) if np.isfinite(r["ci_low"]) else 0.0)
                hi.append(max(r["ci_high"] - r["speedup"], 0.0) if np.isfinite(r["ci_high"]) else 0.0)
                if (layer, algo, *variant) in moved:
                    c.mark_flagged(ax, x, ys[-1] + hi[-1])
            bottom = 0 if not log else None
            ax.bar(xs, ys, width=width, color=color, label=algo, bottom=bottom, **c.peer_style(algo),
                   yerr=np.array([lo, hi]) if xs else None, ecolor="0.15",
                   error_kw={"elinewidth": 0.8, "capsize": 1.5})
        ax.axhline(1.0, color="black", lw=1.0, ls="--", zorder=3)
        if log:
            ax.set_yscale("log")
            c.log_ticks(ax)
        ax.set_ylabel(f"speedup over {baseline} (x{', log' if log else ''})")
        ax.set_title(c.variant_label(variant), fontsize=9, loc="left")
        ax.grid(axis="y", alpha=0.3)
        c.decorate_layer_axis(ax, layers, classes, show_labels=len(rows) > 1 or ax is axes[-1])
    handles = c.algorithm_handles(algos)
    handles += [Line2D([], [], color="black", ls="--", label=f"{baseline} (= 1.0)"), c.absent_handle()]
    if moved:
        handles.append(c.flagged_handle())
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), fontsize=8)
    return fig


def plot_speedup(summary: Any, env: dict | None, out: str | Path, *, samples: Any = None,
                 baseline: str | None = None, confidence: float = 0.95, formats: Any = None) -> list[Path]:
    """Write ``speedup.png``/``.svg`` (see :func:`figure_speedup`); returns the paths."""
    fig = figure_speedup(summary, env, samples=samples, baseline=baseline, confidence=confidence)
    return c.save(fig, out, "speedup", formats)


def figure_gflops(summary: Any, env: dict | None = None) -> Figure:
    """GFLOP/s (direct-equivalent FLOPs / median time) per layer per algorithm, on a log axis.

    Log, because one linear axis up to the sgemm ceiling flattened the
    depthwise layers (1-20 GFLOP/s beside 60) to nothing. The measured sgemm
    GFLOP/s of the machine at the panel's thread count is drawn as the ceiling. Algorithms that do fewer multiplications than the
    direct sum (Winograd, FFT) can pass it: the count is the direct one.
    A ``u8s8`` panel (panels are per layout x dtype) counts integer operations,
    GOP/s, and draws no float ceiling: 8-bit and float rates never share an axis.
    """
    if aggregated(summary):  # too many layers for a bar each: per layer class
        return gflops_by_class(summary, env)
    algos = c.algorithms_of(summary)
    variants = c.variants_of(summary)
    rows = c.layer_rows(summary)
    panels = c.layer_panels(variants, rows)
    fig = c.new_figure(c.figure_width(max(len(r[0]) for r in rows), len(algos)), c.panel_height(len(panels), len(rows)))
    c.title(fig, f"Throughput per layer: direct-equivalent {c.rate_headline(summary['dtype'].unique())}", env,
            summary["threads"].unique(), c.baseline_of(summary))
    width, offsets = c.bar_geometry(len(algos))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (variant, layers, classes) in zip(axes, panels):
        part = summary[c.in_variant(summary, variant)]
        # each panel its own decades: a slow panel does not squash a fast one
        floor = c.log_floor(part.loc[(part["status"] == "ok") & part["layer"].isin(layers), "gflops"], 0.1)
        rows = {(r["layer"], r["algorithm"]): r for r in part.to_dict("records")}
        for j, algo in enumerate(algos):
            color = c.color_of(algo, algos)
            xs, ys = [], []
            for i, layer in enumerate(layers):
                r = rows.get((layer, algo))
                if r is None:
                    continue
                if r["status"] != "ok" or not np.isfinite(r["gflops"]):
                    c.mark_absent(ax, i + offsets[j], width, color)
                    continue
                xs.append(i + offsets[j])
                ys.append(r["gflops"])
            ax.bar(xs, np.asarray(ys, dtype=float) - floor, bottom=floor, width=width, color=color, label=algo,
                   **c.peer_style(algo))
        peak = math.nan if c.is_8bit(variant[1]) else c.sgemm_peak(env, int(variant[2]))  # a float ceiling
        tallest = max([peak if np.isfinite(peak) else 0.0, *part.loc[part["status"] == "ok", "gflops"].dropna()])
        ax.set_yscale("log")
        # headroom above the tallest bar for the layer-class labels
        ax.set_ylim(floor, tallest * 2.5 if tallest > floor else floor * 10)
        c.log_ticks(ax)
        if np.isfinite(peak):
            ax.axhline(peak, color="black", lw=1.2, ls="-.", zorder=3)
            ax.text(1.0, peak, f" sgemm {peak:.0f}", transform=ax.get_yaxis_transform(), va="center",
                    ha="left", fontsize=7, clip_on=False)
        ax.set_ylabel(f"{c.rate_unit([variant[1]])} (direct-equivalent, log)")
        ax.set_title(c.variant_label(variant), fontsize=9, loc="left")
        ax.grid(axis="y", alpha=0.3)
        c.decorate_layer_axis(ax, layers, classes, show_labels=len(rows) > 1 or ax is axes[-1])
    handles = c.algorithm_handles(algos)
    floats_only = "" if not any(c.is_8bit(v[1]) for v in variants) else ", float panels"
    handles += [Line2D([], [], color="black", ls="-.", label=f"sgemm ceiling, measured ({c.sgemm_peak_label(env)}; BLAS, same threads{floats_only})"),
                c.absent_handle()]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), fontsize=8)
    return fig


def plot_gflops(summary: Any, env: dict | None, out: str | Path, *, formats: Any = None) -> list[Path]:
    """Write ``gflops.png``/``.svg`` (see :func:`figure_gflops`); returns the paths."""
    return c.save(figure_gflops(summary, env), out, "gflops", formats)

