"""Results of several machines: the machine panel, and every figure per machine.

:func:`figure_machines` sets machines side by side: the fastest correct
algorithm per layer variant on each machine (a column per machine), and each
algorithm's speedup over the baseline on each machine (one dot per layer, a
bar at the geometric mean). Speedups are ratios on one machine, so machines
of different speeds compare fairly; absolute times never cross machines.

:func:`plot_across` draws the machine panel into ``OUT/machines.*`` and
every single-machine figure of each machine into ``OUT/<machine>/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from ..analysis.machines import machines_of, only_machine, select_per_machine, slug
from ..machine.identity import MACHINE_COLUMN
from ..timing import geomean
from . import _common as c


def _variant_rows(selection: Any, machines: list[str]) -> list[tuple]:
    """Layer variants in run order; those measured on several machines first (they compare)."""
    keys = list(dict.fromkeys(zip(selection["layer"], selection["layout"], selection["dtype"], selection["threads"])))
    seen = {k: set() for k in keys}
    for r in selection.itertuples(index=False):
        seen[(r.layer, r.layout, r.dtype, r.threads)].add(getattr(r, MACHINE_COLUMN))
    return sorted(keys, key=lambda k: -min(len(seen[k]), 2))


def figure_machines(summary: Any, env: dict | None = None) -> Figure:
    """Winner per layer per machine (left) and each algorithm's speedup on each machine (right).

    Left: a cell per layer variant x machine, coloured by the winner (grey:
    not measured there; white: nothing correct). Right: per algorithm, a dot
    per layer variant and a bar at the geometric mean of its speedup over the
    baseline on that machine (log scale; > 1 is faster than the baseline);
    where machines measured different layers (shards) the title says so.
    """
    measured = summary[summary[MACHINE_COLUMN].astype(str) != ""]
    machines = machines_of(measured)
    selection = select_per_machine(measured)
    rows = _variant_rows(selection, machines)
    algos = c.algorithms_of(measured)
    baseline = c.baseline_of(measured)
    fig = c.new_figure(max(10.0, 2.2 * len(machines) + 1.2 * len(algos) + 3), 1.6 + 0.32 * max(len(rows), 8))
    fig.suptitle(f"{len(machines)} machines: the fastest algorithm and each algorithm's speedup over {baseline}",
                 fontsize=11)
    ax_w, ax_s = fig.subplots(1, 2, width_ratios=[1.0 + 0.5 * len(machines), 1.2 + 0.5 * len(algos)])

    by = {(r["layer"], r["layout"], r["dtype"], r["threads"], r[MACHINE_COLUMN]): r["algorithm"]
          for r in selection.to_dict("records")}
    img = np.full((len(rows), len(machines), 3), 0.85)
    for i, key in enumerate(rows):
        for j, m in enumerate(machines):
            winner = by.get((*key, m))
            if winner is None:
                continue  # grey: this machine did not measure the variant
            img[i, j] = to_rgb(c.color_of(winner, algos)) if winner else (1.0, 1.0, 1.0)
            ax_w.text(j, i, winner or "none ok", ha="center", va="center", fontsize=7,
                      color="white" if winner else "black")
    ax_w.imshow(img, aspect="auto", interpolation="nearest")
    ax_w.set_xticks(range(len(machines)), [m.replace(" (", "\n(") for m in machines], fontsize=7)
    ax_w.set_yticks(range(len(rows)), [f"{l} {lay}/{dt} t{t}" for l, lay, dt, t in rows], fontsize=7)
    ax_w.set_title("fastest correct algorithm per layer", fontsize=9)

    ok = measured[(measured["status"] == "ok") & (measured["algorithm"] != baseline)]
    ok = ok[np.isfinite(ok["speedup_vs_baseline"].astype(float))]
    per_machine = [set(zip(g["layer"], g["layout"], g["dtype"], g["threads"]))
                   for _, g in measured.groupby(MACHINE_COLUMN, sort=False)]
    shared = set.intersection(*per_machine) if per_machine else set()
    width = 0.8 / max(1, len(machines))
    others = [a for a in algos if a != baseline]
    for j, m in enumerate(machines):
        mine = ok[ok[MACHINE_COLUMN] == m]
        shade = 0.35 + 0.65 * (j + 1) / len(machines)
        for k, algo in enumerate(others):
            vals = mine.loc[mine["algorithm"] == algo, "speedup_vs_baseline"].astype(float).to_numpy()
            x = k - 0.4 + width * (j + 0.5)
            if vals.size:
                ax_s.bar(x, geomean(vals), width * 0.9, color=c.color_of(algo, algos), alpha=shade,
                         edgecolor="black", linewidth=0.4, label=m if k == 0 else None)
                ax_s.plot(np.full(vals.size, x), vals, "k.", markersize=3)
            else:
                c.mark_absent(ax_s, x, width * 0.9, c.color_of(algo, algos), log=True)
    ax_s.axhline(1.0, color="black", linewidth=0.8)
    ax_s.set_yscale("log")
    ax_s.set_xticks(range(len(others)), others, rotation=30, ha="right", fontsize=8)
    ax_s.set_ylabel(f"speedup over {baseline}\n(bar: geometric mean, dots: layers)", fontsize=8)
    note = "" if len(shared) else " (machines measured different layers: not one-to-one)"
    ax_s.set_title(f"each algorithm on each machine, bars left to right: {', '.join(m.split(' (')[0] for m in machines)}"
                   + note, fontsize=8)
    return fig


def plot_machines(summary: Any, env: dict | None, out: str | Path, *, formats: Any = None) -> list[Path]:
    fig = figure_machines(summary, env)
    return c.save(fig, out, "machines", formats)


def plot_across(res: Any, out: Path, draw_one: Any, *, only: list[str] | None = None, formats: Any = None) -> list[Path]:
    """The machine panel into ``out`` and ``draw_one(results, out/<machine>)`` for each machine."""
    paths: list[Path] = []
    if not only or "machines" in only:
        paths += plot_machines(res.summary, res.env, out, formats=formats)
    singles = [n for n in only or [] if n != "machines"]
    if only and not singles:
        return paths
    for m in machines_of(res.summary):
        paths += draw_one(only_machine(res, m), out / slug(m), singles or None)
    return paths
