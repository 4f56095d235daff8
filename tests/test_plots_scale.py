"""Figures of runs too large to draw layer by layer: aggregated per class, said so, nothing dropped.

The limit is lowered on the small synthetic run (tests/data) instead of
building a big one: the code path is the same and the test stays fast.
"""

from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from convbench import plots
from convbench.analysis.compare import ratio_table
from convbench.plots import _scale, choice
from convbench.results import read_results

DATA = Path(__file__).parent / "data" / "synthetic_run"


@pytest.fixture(scope="module")
def run():
    return read_results(DATA)


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(_scale, "MAX_LAYERS", 4)
    monkeypatch.setattr(choice, "MAX_LAYERS", 4)


def _title(fig):
    return fig._suptitle.get_text()


def _dots(ax):
    """Every per-layer dot of a panel (markers without lines)."""
    return sum(len(line.get_xdata()) for line in ax.get_lines()
               if line.get_linestyle() in ("None", "none", "") and line.get_marker() == "o")


def test_small_runs_stay_per_layer(run):
    fig = plots.figure_speedup(run.summary, run.env, samples=run.samples)
    assert "aggregated" not in _title(fig)
    assert "conv1" in {t.get_text() for ax in fig.axes for t in ax.get_xticklabels()}


def test_speedup_aggregates_per_class_and_draws_every_layer(run, small_limit):
    fig = plots.figure_speedup(run.summary, run.env, samples=run.samples)
    assert "aggregated per layer class" in _title(fig) and "9 layers" in _title(fig) and "> 4 layers" in _title(fig)
    axes = [ax for ax in fig.axes if ax.get_ylabel()]
    assert len(axes) == 2  # one panel per thread count, as the per-layer figure
    table = ratio_table(run.summary, run.samples, "im2col")
    for ax, t in zip(axes, (1, 2)):
        part = table[(table["threads"] == t) & (table["algorithm"] != "im2col")]
        assert _dots(ax) == int(np.isfinite(part["speedup"]).sum())  # a dot per valid layer: none dropped
        labels = [t.get_text().split("\n")[0] for t in ax.get_xticklabels()]
        assert labels == ["first", "3x3", "1x1"]
        assert any(p.get_hatch() for p in ax.patches)  # winograd has no 1x1 case: marked, not left out
    assert "no valid value" in axes[0].get_title(loc="left")


@pytest.mark.parametrize("name", ["gflops", "memory", "accuracy"])
def test_other_per_layer_figures_aggregate_too(run, small_limit, name):
    fig = getattr(plots, f"figure_{name}")(run.summary, run.env)
    assert "aggregated per layer class" in _title(fig)
    axes = [ax for ax in fig.axes if ax.get_ylabel()]
    assert all(len(ax.get_xticklabels()) == 3 for ax in axes)
    assert sum(_dots(ax) for ax in axes) > 0


def test_winner_map_lists_loose_layers_per_class(run, small_limit, monkeypatch):
    monkeypatch.setattr(choice, "grid_families", lambda summary: ([], list(dict.fromkeys(summary["layer"]))))
    fig = plots.figure_winner_map(run.summary, run.env)
    text = "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))
    assert "per layer class" in text and "(6 layers)" in text and "winograd" in text


def test_thread_scaling_draws_the_spread_as_a_band(run, small_limit):
    fig = plots.figure_thread_scaling(run.summary, run.env)
    assert "middle half of the layers" in _title(fig)
    assert any(isinstance(coll, PolyCollection) for ax in fig.axes for coll in ax.collections)


def test_plot_all_draws_in_parallel_png_by_default(tmp_path):
    serial = plots.plot_all(DATA, tmp_path / "a", only=["speedup", "network", "roofline"], jobs=1)
    parallel = plots.plot_all(DATA, tmp_path / "b", only=["speedup", "network", "roofline"], jobs=2)
    assert [p.name for p in serial] == [p.name for p in parallel] == ["speedup.png", "roofline.png", "network.png"]  # FIGURES order
    assert all(p.is_file() and p.stat().st_size > 5000 for p in parallel)


def test_identical_layers_give_zero_width_whiskers_not_an_error(run, small_limit):
    summary = run.summary.copy()
    summary["layer_class"] = "all"  # one class: many layers with equal speedups per algorithm
    fig = plots.figure_speedup(summary, run.env, samples=run.samples)
    assert "aggregated per layer class" in _title(fig)
