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
from .headline import figure_headline, plot_headline
from .machine import figure_roofline, figure_thread_scaling, plot_roofline, plot_thread_scaling
from .speed import figure_gflops, figure_speedup, plot_gflops, plot_speedup

__all__ = [
    "plot_all", "plot_speedup", "plot_gflops", "plot_memory", "plot_accuracy", "plot_roofline",
    "plot_winner_map", "plot_thread_scaling", "plot_network", "plot_headline", "figure_headline",
    "figure_speedup", "figure_gflops", "figure_memory", "figure_accuracy", "figure_roofline",
    "figure_winner_map", "figure_thread_scaling", "figure_network",
]

#: The figures of ``convbench plot``, by file name.
FIGURES = ("speedup", "gflops", "memory", "accuracy", "roofline", "winner_map", "thread_scaling", "network",
           "headline")


def plot_all(results_dir: str | Path, out_dir: str | Path | None = None, *,
             only: list[str] | None = None, formats: Any = None) -> list[Path]:
    """Draw every figure of a results folder into ``out_dir`` (default ``DIR/plots/``).

    ``only`` limits the figures (names from :data:`FIGURES`). Returns the
    files written, PNG and SVG for each figure (thread scaling only when the
    run has more than one thread count).
    """
    from ..results import read_results

    res = read_results(results_dir)
    out = Path(out_dir) if out_dir is not None else Path(results_dir) / "plots"
    unknown = [n for n in only or [] if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    wanted = set(only or FIGURES)
    s, env = res.summary, res.env
    if s.empty:
        raise ValueError(f"{results_dir}: summary.csv has no rows; nothing to draw")
    calls = {
        "speedup": lambda: plot_speedup(s, env, out, samples=res.samples, formats=formats),
        "gflops": lambda: plot_gflops(s, env, out, formats=formats),
        "memory": lambda: plot_memory(s, env, out, formats=formats),
        "accuracy": lambda: plot_accuracy(s, env, out, formats=formats),
        "roofline": lambda: plot_roofline(s, env, out, formats=formats),
        "winner_map": lambda: plot_winner_map(s, env, out, formats=formats),
        "thread_scaling": lambda: plot_thread_scaling(s, env, out, formats=formats),
        "network": lambda: plot_network(s, env, out, formats=formats),
        # the README-sized summary of indirect against im2col; only for runs that have both
        "headline": lambda: (plot_headline(s, env, out, formats=formats)
                             if {"indirect"} <= set(s["algorithm"]) and {"im2col", "im2col-numba"} & set(s["algorithm"])
                             else []),
    }
    paths: list[Path] = []
    for name in FIGURES:
        if name in wanted:
            paths += calls[name]()
    return paths
