"""The thread-scaling figure: each algorithm's speedup against threads, per layer class,
beside what the machine's own sgemm does with the same threads.

Drawn when a run has more than one thread count. Speedup is an algorithm's
median time at the lowest count over its median time at each count, on the
same layer; a panel row is a layer class (the config's ``layer_class``),
pooling its layers and the run's layouts and dtypes by geometric mean (the
thick line), with a thin line per layer or, past ``MAX_LAYERS`` layers, the
middle half of the layers as a band. The black dash-dotted line is the
machine's sgemm at those counts (``env.json``'s calibration, measured by the
run at every count it sweeps): an algorithm near it uses the cores as well as
the machine's BLAS does; far under it, it leaves a core idle (or pays for
waking it). Peers are grey and dashed. The right column is the parallel
efficiency, speedup over the thread ratio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..timing import geomean
from . import _common as c
from ._scale import aggregated, class_of, class_order


def scaling_table(summary: Any) -> Any:
    """Per algorithm x layout x dtype x layer x threads: speedup over its own 1-thread
    (lowest-count) time and efficiency = speedup / (threads / lowest count)."""
    ok = summary[summary["status"] == "ok"]
    keys = ["algorithm", "layout", "dtype", "layer"]
    base_threads = ok.groupby(keys)["threads"].transform("min")
    base = ok[ok["threads"] == base_threads].set_index(keys)["time_median_s"]
    base = base[~base.index.duplicated()]  # a warm and a cold case of one layer: the first
    df = ok[keys + ["threads", "time_median_s"]].copy()
    df["base_threads"] = base_threads
    df["base_time_s"] = base.reindex(df.set_index(keys).index).to_numpy()
    df["speedup"] = df["base_time_s"] / df["time_median_s"]
    df["efficiency"] = df["speedup"] / (df["threads"] / df["base_threads"])
    if "layer_class" in ok.columns:
        df["layer_class"] = ok["layer_class"]
    return df


def sgemm_scaling(env: dict | None, threads: list[int]) -> dict[int, float]:
    """The machine's sgemm speedup at each of ``threads`` over the lowest, from the
    run's calibration (empty when it has fewer than two of those counts)."""
    rates = {t: c.sgemm_peak(env, t) for t in threads}
    rates = {t: r for t, r in rates.items() if np.isfinite(r) and r > 0}
    if len(rates) < 2 or threads[0] not in rates:
        return {}
    return {t: r / rates[threads[0]] for t, r in rates.items()}


def figure_thread_scaling(summary: Any, env: dict | None = None) -> Figure:
    """Speedup and parallel efficiency against threads, a row per layer class (see the
    module docstring). Only meaningful when the run has more than one count."""
    df = scaling_table(summary)
    threads = sorted(int(t) for t in summary["threads"].unique())
    algos = c.algorithms_of(summary)
    has_class = "layer_class" in summary.columns
    classes = class_order(summary) if has_class else ["all layers"]
    df["cls"] = class_of(df, classes) if has_class else "all layers"
    band = aggregated(summary)
    sgemm = sgemm_scaling(env, threads)
    fig = c.new_figure(11, 3.4 * len(classes) + 1.6)
    headline = "Thread scaling: speedup over the same algorithm at the lowest thread count, per layer class"
    if band:
        headline += f"\n{summary['layer'].nunique()} layers: the band is the middle half of the layers (25-75%)"
    c.title(fig, headline, env, threads)
    axes = fig.subplots(len(classes), 2, squeeze=False)
    t0 = threads[0]
    for (ax_s, ax_e), cls in zip(axes, classes):
        part = df[df["cls"] == cls]
        for algo in algos:
            a = part[part["algorithm"] == algo]
            keys = ["layer", "layout", "dtype"]
            full = a.groupby(keys)["threads"].nunique()
            a = a.set_index(keys).loc[full[full == len(threads)].index].reset_index() if len(full) else a
            if a.empty:
                continue
            color = c.color_of(algo, algos)
            if band:
                q = a.groupby("threads")[["speedup", "efficiency"]].quantile([0.25, 0.75]).unstack()
                for ax, col in ((ax_s, "speedup"), (ax_e, "efficiency")):
                    ax.fill_between(q.index, q[(col, 0.25)], q[(col, 0.75)], color=color, alpha=0.15, lw=0)
            else:
                for _, g in a.groupby(keys):
                    g = g.sort_values("threads")
                    ax_s.plot(g["threads"], g["speedup"], color=color, lw=0.5, alpha=0.3)
                    ax_e.plot(g["threads"], g["efficiency"], color=color, lw=0.5, alpha=0.3)
            mean = a.groupby("threads").agg(speedup=("speedup", geomean), efficiency=("efficiency", geomean))
            label = f"{algo} (peer)" if c.is_peer(algo) else algo
            for ax, col in ((ax_s, "speedup"), (ax_e, "efficiency")):
                ax.plot(mean.index, mean[col], color=color, lw=2, marker="o", ms=4, label=label,
                        **c.peer_style(algo, line=True))
        ax_s.plot(threads, [t / t0 for t in threads], color="black", ls=":", lw=1, label="perfect scaling")
        ax_e.axhline(1.0, color="black", ls=":", lw=1)
        if sgemm:
            ts = sorted(sgemm)
            ax_s.plot(ts, [sgemm[t] for t in ts], color="black", ls="-.", lw=1.5,
                      label="this machine's sgemm (BLAS, calibration)")
            ax_e.plot(ts, [sgemm[t] / (t / t0) for t in ts], color="black", ls="-.", lw=1.5)
        n_layers = part["layer"].nunique()
        for ax in (ax_s, ax_e):
            ax.set_xticks(threads)
            ax.set_xlabel("threads")
            ax.grid(alpha=0.3)
            ax.set_title(f"{cls} ({n_layers} layer{'s' if n_layers != 1 else ''})", fontsize=9, loc="left")
        ax_s.set_ylabel(f"speedup over {t0} thread{'s' if t0 != 1 else ''} (x)")
        ax_e.set_ylabel("parallel efficiency (speedup / threads)")
        top = float(np.nanmax(part["efficiency"])) if len(part) else 1.0
        ax_e.set_ylim(0, max(1.1, (top if np.isfinite(top) else 1.0) * 1.05))
    handles, labels = [], []
    for ax in axes[:, 0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if not sgemm:  # say why the reference line is missing
        handles.append(Line2D([], [], color="none"))
        labels.append("(no sgemm calibration at these thread counts)")
    fig.legend(handles=handles, labels=labels, loc="outside lower center", ncol=min(len(labels), 5), fontsize=8)
    return fig


def plot_thread_scaling(summary: Any, env: dict | None, out: str | Path, *, formats: Any = None) -> list[Path]:
    """Write ``thread_scaling.png``/``.svg``; nothing (``[]``) for a single thread count."""
    if summary["threads"].nunique() < 2:
        return []
    return c.save(figure_thread_scaling(summary, env), out, "thread_scaling", formats)
