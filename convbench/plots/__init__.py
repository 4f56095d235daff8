"""Figures from a results folder (never from live objects), PNG (SVG, PDF on request).

Every function takes the run's summary DataFrame (+ the env.json dict) and an
output path (a folder, or a file name whose suffix is replaced), writes PNG
(or the ``formats`` asked for), and returns the paths written. ``figure_*`` twins return the
:class:`matplotlib.figure.Figure` instead (for notebooks and tests).
:func:`plot_all` draws every figure of a results folder into ``DIR/plots/``.

Skipped, failed and errored cases are drawn as hatched, unfilled columns
(or left out of point plots), never as zero. A run with more layers than a
reader can tell apart is drawn per layer class (:mod:`._scale`), and the
title says so. :func:`plot_all` draws its figures in parallel processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .choice import figure_network, figure_winner_map, plot_network, plot_winner_map
from .cost import figure_accuracy, figure_memory, plot_accuracy, plot_memory
from .headline import figure_headline, plot_headline
from .machine import figure_roofline, plot_roofline
from .scaling import figure_thread_scaling, plot_thread_scaling
from .machines import figure_machines, plot_machines
from .phases import figure_phases, plot_phases
from .speed import figure_gflops, figure_speedup, plot_gflops, plot_speedup

__all__ = [
    "plot_all", "plot_speedup", "plot_gflops", "plot_memory", "plot_accuracy", "plot_roofline",
    "plot_winner_map", "plot_thread_scaling", "plot_network", "plot_headline", "figure_headline",
    "figure_speedup", "figure_gflops", "figure_memory", "figure_accuracy", "figure_roofline",
    "figure_winner_map", "figure_thread_scaling", "figure_network", "figure_machines", "plot_machines",
    "figure_phases", "plot_phases",
]

#: The figures of ``convbench plot``, by file name (``machines`` too, with several machines).
FIGURES = ("speedup", "gflops", "memory", "accuracy", "roofline", "winner_map", "thread_scaling", "network",
           "headline", "phases")


def plot_all(results_dir: str | Path | list[str | Path], out_dir: str | Path | None = None, *,
             only: list[str] | None = None, formats: Any = None, jobs: int | None = None,
             results: Any = None) -> list[Path]:
    """Draw every figure of a results folder into ``out_dir`` (default ``DIR/plots/``).

    ``only`` limits the figures (names from :data:`FIGURES`). Returns the
    files written, one per format per figure (thread scaling only when the
    run has more than one thread count), in :data:`FIGURES` order. ``jobs``
    processes draw (default: the usable cores, at most one per figure).
    Results of more than one machine (a merged folder, or a list of folders;
    then ``out_dir`` is needed) get the ``machines`` panel, and every other
    figure once per machine in ``OUT/<machine>/`` (:mod:`convbench.plots.machines`).
    """
    from ..analysis.machines import load, machines_of
    from ..results import ANALYSIS_SAMPLE_COLUMNS
    from .machines import plot_across

    folders = list(results_dir) if isinstance(results_dir, (list, tuple)) else [results_dir]
    if out_dir is None and len(folders) > 1:
        raise ValueError("several results folders: say where the figures go with --out DIR")
    unknown = [n for n in only or [] if n not in (*FIGURES, "machines")]
    if unknown:
        raise ValueError(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}, machines")
    # figures need each case's times, nothing more
    res = results if results is not None else load(folders, samples=ANALYSIS_SAMPLE_COLUMNS)
    out = Path(out_dir) if out_dir is not None else Path(folders[0]) / "plots"
    if res.summary.empty:
        raise ValueError(f"{', '.join(map(str, folders))}: summary.csv has no rows; nothing to draw")
    if len(machines_of(res.summary)) > 1:
        return plot_across(res, out, lambda r, o, names: _plot_one(r, o, names, formats, jobs), only=only,
                           formats=formats)
    singles = [n for n in only or [] if n != "machines"]
    if only and not singles:
        return []  # only the machine panel asked for, and there is one machine
    return _plot_one(res, out, singles or None, formats, jobs)


def _plot_one(res: Any, out: Path, only: list[str] | None, formats: Any, jobs: int | None = None) -> list[Path]:
    """Every figure (or ``only`` these) of one machine's results."""
    from ..results.io import read_phases

    wanted = set(only or FIGURES)
    s, env = res.summary, res.env

    def phases_figure() -> list[Path]:  # phases.csv is read only when this figure is drawn
        phases = read_phases(res.path)  # the figure keeps the rows of this summary's cases
        return plot_phases(s, phases, env, out, formats=formats) if len(phases) else []

    calls = {
        "speedup": lambda: plot_speedup(s, env, out, samples=res.samples, formats=formats),
        "gflops": lambda: plot_gflops(s, env, out, formats=formats),
        "memory": lambda: plot_memory(s, env, out, formats=formats),
        "accuracy": lambda: plot_accuracy(s, env, out, formats=formats),
        "roofline": lambda: plot_roofline(s, env, out, formats=formats),
        "winner_map": lambda: plot_winner_map(s, env, out, formats=formats),
        "thread_scaling": lambda: plot_thread_scaling(s, env, out, formats=formats),
        "network": lambda: plot_network(s, env, out, formats=formats),
        # only for runs that timed phases (phases.csv with rows)
        "phases": phases_figure,
        # the README-sized summary of indirect against im2col; only for runs that have both
        "headline": lambda: (plot_headline(s, env, out, formats=formats)
                             if {"indirect"} <= set(s["algorithm"]) and {"im2col", "im2col-numba"} & set(s["algorithm"])
                             else []),
    }
    names = [n for n in FIGURES if n in wanted]
    return [p for group in _draw(calls, names, jobs) for p in group]


#: Rough relative drawing cost, biggest first, so two workers finish together.
_COST = {"speedup": 4, "memory": 4, "winner_map": 4, "accuracy": 3, "gflops": 3, "thread_scaling": 2,
         "network": 1, "roofline": 1}
_CALLS: dict[str, Any] = {}


def _call(name: str) -> list[Path]:
    return _CALLS[name]()


def _draw(calls: dict[str, Any], names: list[str], jobs: int | None) -> list[list[Path]]:
    """Each figure's paths, in ``names`` order; drawn by forked workers when that helps.

    Drawing is CPU-bound Python (matplotlib holds the GIL), so processes, not
    threads. Fork shares the data read already; where fork is unavailable
    (Windows, macOS default) the figures are drawn one after another.
    """
    import multiprocessing as mp
    import os

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = max(1, min(jobs or usable, len(names)))
    if jobs == 1 or "fork" not in mp.get_all_start_methods():
        return [calls[n]() for n in names]
    _CALLS.clear()
    _CALLS.update(calls)
    order = sorted(names, key=lambda n: -_COST.get(n, 2))
    try:
        with mp.get_context("fork").Pool(jobs) as pool:
            done = dict(zip(order, pool.map(_call, order, chunksize=1)))
    finally:
        _CALLS.clear()
    return [done[n] for n in names]
