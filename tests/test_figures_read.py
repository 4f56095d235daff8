"""Figures a reader can read: nothing clipped or struck through, scales that
show every panel, a roof that is what the machine measured."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))

from convbench import plots  # noqa: E402
from convbench.plots import _common as c  # noqa: E402
from convbench.results import read_results  # noqa: E402

DATA = Path(__file__).parent / "data" / "synthetic_run"
#: The shipped runs: real numbers of algorithms, classes and layers, where the defects showed.
SHIPPED = Path(__file__).resolve().parents[1] / "results"


@pytest.fixture(scope="module")
def run():
    return read_results(DATA)


def _inside_figure(fig, artist) -> bool:
    fig.canvas.draw()
    box, page = artist.get_window_extent(), fig.bbox
    return box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1 and box.y0 >= page.y0 - 1 and box.y1 <= page.y1 + 1


def test_roofline_legend_is_inside_the_figure():
    paper = read_results(SHIPPED / "paper")  # 8 algorithms, 4 classes, one thread count
    fig = plots.figure_roofline(paper.summary, paper.env)
    assert fig.legends and all(_inside_figure(fig, leg) for leg in fig.legends)


def test_roof_is_the_best_of_several_calibrations_when_env_has_them(run):
    env = copy.deepcopy(run.env)
    assert c.sgemm_peak(env, 1) == 80.0  # one calibration only: that one
    env["calibration"]["sgemm_gflops_best"] = {"1": 95.0, "2": 170.0}
    assert c.sgemm_peak(env, 1) == 95.0 and c.sgemm_peak(env, 2) == 170.0
    fig = plots.figure_roofline(run.summary, env)
    text = "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))
    assert "sgemm 95 GFLOP/s (best of several calibrations)" in text and "roof (measured)" in text


def test_without_a_calibration_the_roof_is_the_best_observed_rate(run):
    env = copy.deepcopy(run.env)
    env["calibration"] = {"memory_copy_gbs": 12.0}
    fig = plots.figure_roofline(run.summary, env)
    text = "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))
    best = run.summary.loc[(run.summary["status"] == "ok") & (run.summary["threads"] == 1), "gflops"].max()
    assert f"best observed rate {best:.0f} GFLOP/s" in text


def test_gflops_panels_are_log_so_slow_layers_are_visible(run):
    fig = plots.figure_gflops(run.summary, run.env)
    axes = [ax for ax in fig.axes if ax.get_ylabel()]
    assert axes and all(ax.get_yscale() == "log" for ax in axes)
    for ax in axes:  # the slowest ok bar is well above the panel's floor, not a sliver at 0
        bottom, top = ax.get_ylim()
        heights = [p.get_y() + p.get_height() for p in ax.patches if p.get_facecolor()[3] > 0 and p.get_fill()]
        heights = [h for h in heights if h > bottom]
        assert heights and np.log10(min(heights) / bottom) >= np.log10(2) - 1e-9


@pytest.mark.parametrize("which", ["synthetic", "mobilenet"])
def test_accuracy_class_labels_sit_above_every_tolerance_line(run, which):
    res = run if which == "synthetic" else read_results(SHIPPED / "mobilenet")
    fig = plots.figure_accuracy(res.summary, res.env)
    fig.canvas.draw()
    for ax in [ax for ax in fig.axes if ax.get_ylabel()]:
        labels = [t for t in ax.texts if t.get_text() and not t.get_text().startswith(" tol")]
        lines = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert labels and lines
        for t in labels:
            bottom = t.get_window_extent().y0
            for line in lines:
                y = ax.transData.transform((0, line.get_ydata()[0]))[1]
                assert bottom > y, f"{t.get_text()!r} is struck by the tolerance line"


def test_headline_figure_reads_at_readme_width():
    """One panel, at most 8 inches wide (the README shows it at about its width), no text
    under 9 pt: the per-layer figures are too tall and too small there."""
    paper = read_results(SHIPPED / "paper")
    fig = plots.figure_headline(paper.summary, paper.env)
    assert len(fig.axes) == 1 and fig.get_figwidth() <= 8.0 and fig.get_figheight() <= 4.5
    fig.canvas.draw()
    sizes = [t.get_fontsize() for t in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
             if t.get_text().strip() and t.get_visible()]
    assert sizes and min(sizes) >= 9
    assert all(_inside_figure(fig, leg) for leg in fig.legends)
    table = plots.headline.headline_table(paper.summary)
    assert set(table["reference"]) == {"im2col-numba", "im2col"}
    assert set(table["layer_class"]) == set(paper.summary["layer_class"])
    readme = (SHIPPED.parent / "README.md").read_text()
    assert "(results/paper/plots/headline.png)" in readme and (SHIPPED / "paper" / "plots" / "headline.png").is_file()
