"""Figures from a results folder (never from live objects), PNG + SVG.

Every function takes the run's summary DataFrame (+ the env.json dict) and an
output path (a folder, or a file name whose suffix is replaced), writes PNG
and SVG, and returns the paths written. ``figure_*`` twins return the
:class:`matplotlib.figure.Figure` instead (for notebooks and tests).
:func:`plot_all` draws every figure of a results folder into ``DIR/plots/``.

Skipped, failed and errored cases are drawn as hatched, unfilled columns
(or left out of point plots), never as zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .choice import figure_network, figure_winner_map, plot_network, plot_winner_map
from .cost import figure_accuracy, figure_memory, plot_accuracy, plot_memory
from .machine import figure_roofline, figure_thread_scaling, plot_roofline, plot_thread_scaling
from .machines import figure_machines, plot_machines
from .speed import figure_gflops, figure_speedup, plot_gflops, plot_speedup

__all__ = [
    "plot_all", "plot_speedup", "plot_gflops", "plot_memory", "plot_accuracy", "plot_roofline",
    "plot_winner_map", "plot_thread_scaling", "plot_network",
    "figure_speedup", "figure_gflops", "figure_memory", "figure_accuracy", "figure_roofline",
    "figure_winner_map", "figure_thread_scaling", "figure_network", "figure_machines", "plot_machines",
]

#: The figures of ``convbench plot``, by file name (``machines`` too, with several machines).
FIGURES = ("speedup", "gflops", "memory", "accuracy", "roofline", "winner_map", "thread_scaling", "network")


def plot_all(results_dir: str | Path | list[str | Path], out_dir: str | Path | None = None, *,
             only: list[str] | None = None, formats: Any = None) -> list[Path]:
    """Draw every figure of a results folder into ``out_dir`` (default ``DIR/plots/``).

    ``only`` limits the figures (names from :data:`FIGURES`). Returns the
    files written, PNG and SVG for each figure (thread scaling only when the
    run has more than one thread count). Results of more than one machine (a
    merged folder, or a list of folders; then ``out_dir`` is needed) get the
    ``machines`` panel, and every other figure once per machine in
    ``OUT/<machine>/`` (:mod:`convbench.plots.machines`).
    """
    from ..analysis.machines import load, machines_of
    from .machines import plot_across

    folders = list(results_dir) if isinstance(results_dir, (list, tuple)) else [results_dir]
    if out_dir is None and len(folders) > 1:
        raise ValueError("several results folders: say where the figures go with --out DIR")
    unknown = [n for n in only or [] if n not in (*FIGURES, "machines")]
    if unknown:
        raise ValueError(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}, machines")
    res = load(folders)
    out = Path(out_dir) if out_dir is not None else Path(folders[0]) / "plots"
    if res.summary.empty:
        raise ValueError(f"{', '.join(map(str, folders))}: summary.csv has no rows; nothing to draw")
    if len(machines_of(res.summary)) > 1:
        return plot_across(res, out, lambda r, o, names: _plot_one(r, o, names, formats), only=only, formats=formats)
    singles = [n for n in only or [] if n != "machines"]
    if only and not singles:
        return []  # only the machine panel asked for, and there is one machine
    return _plot_one(res, out, singles or None, formats)


def _plot_one(res: Any, out: Path, only: list[str] | None, formats: Any) -> list[Path]:
    """Every figure (or ``only`` these) of one machine's results."""
    wanted = set(only or FIGURES)
    s, env = res.summary, res.env
    calls = {
        "speedup": lambda: plot_speedup(s, env, out, samples=res.samples, formats=formats),
        "gflops": lambda: plot_gflops(s, env, out, formats=formats),
        "memory": lambda: plot_memory(s, env, out, formats=formats),
        "accuracy": lambda: plot_accuracy(s, env, out, formats=formats),
        "roofline": lambda: plot_roofline(s, env, out, formats=formats),
        "winner_map": lambda: plot_winner_map(s, env, out, formats=formats),
        "thread_scaling": lambda: plot_thread_scaling(s, env, out, formats=formats),
        "network": lambda: plot_network(s, env, out, formats=formats),
    }
    paths: list[Path] = []
    for name in FIGURES:
        if name in wanted:
            paths += calls[name]()
    return paths
