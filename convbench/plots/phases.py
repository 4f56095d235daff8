"""Where the time goes: each algorithm's call split into its phases, warm and cold side by side.

Drawn from ``phases.csv`` (:mod:`convbench.sweep.phasing`): per layer (or,
past :data:`PER_LAYER` layers, per layer class, the phases summed over the
class's layers, as a network total is), one horizontal bar per algorithm
and cache state, stacked by phase in call order. A case whose phases did not
add up to its whole call (``phases_add_up`` false in summary.csv) has its
bar outlined in red; a black tick marks the whole call's median (summary.csv).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..phases import PHASES
from . import _common as c

#: Past this many layers a panel draws layer classes instead of layers.
PER_LAYER = 8
#: One colour per phase, in the order of :data:`convbench.phases.PHASES`.
PHASE_COLORS = dict(zip(PHASES, ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8C8C8C")))


def _panels(phases: Any) -> list[tuple]:
    """(layout, dtype, threads) combinations, warm and cold drawn in the same panel."""
    return list(dict.fromkeys(zip(phases["layout"], phases["dtype"], phases["threads"])))


def _units(part: Any, summary: Any) -> tuple[Any, str]:
    """Rows keyed by ``unit`` (the layer, or its class past :data:`PER_LAYER` layers)."""
    part = part.copy()
    if part["layer"].nunique() <= PER_LAYER:
        part["unit"] = part["layer"].astype(str)
        return part, "layer"
    classes = summary.drop_duplicates("layer").set_index("layer")["layer_class"].fillna("").astype(str)
    part["unit"] = part["layer"].map(classes).replace("", "(no class)")
    return part, "layer class (phases summed over its layers)"


def figure_phases(summary: Any, phases: Any, env: dict | None = None) -> Figure:
    """The "where the time goes" figure (see the module docstring)."""
    ok = summary[summary["status"] == "ok"]
    phases = phases[phases["case_id"].isin(set(ok["case_id"]))] if len(phases) else phases
    if not len(phases):
        fig = c.new_figure(8, 3)
        c.no_data(fig, "no phases were timed (a run with --no-phases, or from before phases.csv)")
        return fig
    flagged = set(ok.loc[ok.get("phases_add_up", True) == False, "case_id"])  # noqa: E712
    algos = [a for a in c.algorithms_of(ok) if a in set(phases["algorithm"])]
    panels = _panels(phases)
    heights, prepared = [], []
    for variant in panels:
        part = phases[(phases["layout"] == variant[0]) & (phases["dtype"] == variant[1])
                      & (phases["threads"] == variant[2])]
        part, unit_name = _units(part, ok)
        units = list(dict.fromkeys(part["unit"]))
        caches = [s for s in ("warm", "cold") if s in set(part["cache"])]
        rows = [(u, a, s) for u in units for a in algos for s in caches
                if ((part["unit"] == u) & (part["algorithm"] == a) & (part["cache"] == s)).any()]
        prepared.append((variant, part, unit_name, rows))
        heights.append(max(1.5, 0.22 * len(rows) + 0.8))
    fig = c.new_figure(10, sum(heights) + 1.6)
    c.title(fig, "Where the time goes: each call's phases (medians, stacked in call order)", env,
            sorted(set(phases["threads"])))
    axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, (variant, part, unit_name, rows) in zip(axes, prepared):
        _panel(ax, part, rows, flagged, ok.set_index("case_id")["time_median_s"])
        ax.set_title(f"{variant[0].upper()}, {variant[1]}, {variant[2]} thread{'s' if variant[2] != 1 else ''}; "
                     f"per {unit_name}", fontsize=9, loc="left")
    handles = [Patch(color=PHASE_COLORS[p], label=p) for p in PHASES if p in set(phases["phase"])]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="cold caches"))
    if flagged:
        handles.append(Patch(facecolor="white", edgecolor="red", label="phases do not add up (±15%)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 7), fontsize=8)
    return fig


def _panel(ax: Any, part: Any, rows: Sequence[tuple], flagged: set, whole: Any) -> None:
    y = np.arange(len(rows))[::-1]
    for yi, (unit, algo, state) in zip(y, rows):
        sel = part[(part["unit"] == unit) & (part["algorithm"] == algo) & (part["cache"] == state)]
        left = 0.0
        for phase in PHASES:
            t = float(sel.loc[sel["phase"] == phase, "time_median_s"].sum())
            if t <= 0:
                continue
            ax.barh(yi, t * 1e3, left=left, height=0.8, color=PHASE_COLORS[phase],
                    hatch="//" if state == "cold" else None, edgecolor="white" if state == "warm" else "black",
                    linewidth=0.3)
            left += t * 1e3
        if set(sel["case_id"]) & flagged:
            ax.barh(yi, left, height=0.8, fill=False, edgecolor="red", linewidth=1.0)
        total = float(whole.reindex(list(dict.fromkeys(sel["case_id"]))).sum())
        if total > 0:
            ax.plot([total * 1e3], [yi], marker="|", color="black", markersize=9, mew=1.5)
    ax.set_yticks(y, [f"{u} · {a}" + (" · cold" if s == "cold" else "") for u, a, s in rows], fontsize=7)
    ax.set_xlabel("time per call, ms (phase medians)")
    ax.grid(axis="x", alpha=0.3)


def plot_phases(summary: Any, phases: Any, env: dict | None, out: str | Path,
                formats: Sequence[str] | None = None) -> list[Path]:
    """Write :func:`figure_phases` as ``phases`` in ``out``."""
    return c.save(figure_phases(summary, phases, env), out, "phases", formats)
