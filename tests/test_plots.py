"""convbench.plots: every figure from a synthetic results folder (tests/data)."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from matplotlib.patches import Rectangle

sys.path.insert(0, str(Path(__file__).parent / "data"))
import make_synthetic  # noqa: E402

from convbench import plots  # noqa: E402
from convbench.results import read_results  # noqa: E402

DATA = Path(__file__).parent / "data" / "synthetic_run"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run():
    return read_results(DATA)


@pytest.fixture(scope="module")
def one_thread(tmp_path_factory):
    folder = make_synthetic.make_results(tmp_path_factory.mktemp("t1") / "run", threads=(1,), n_samples=5,
                                         layers=make_synthetic.LAYERS[:3] + make_synthetic.LAYERS[-1:])
    return read_results(folder)


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


def _texts(fig):
    out = []
    for t in fig.findobj(lambda a: hasattr(a, "get_text")):
        out.append(t.get_text())
    return "\n".join(out)


def test_plot_all_writes_every_figure_as_png_and_svg(tmp_path):
    paths = plots.plot_all(DATA, tmp_path / "plots", only=["speedup", "network"], formats=["png", "svg"])
    assert [p.name for p in paths] == ["speedup.png", "speedup.svg", "network.png", "network.svg"]
    assert all(_is_png(p) for p in paths if p.suffix == ".png")
    svg = ET.parse(paths[1]).getroot()
    assert svg.tag.endswith("svg")
    text = paths[1].read_text()
    assert "Speedup over im2col" in text and "Synthetic CPU (test data)" in text and "indirect" in text


@pytest.mark.parametrize("name", ["gflops", "memory", "accuracy", "roofline", "winner_map", "thread_scaling"])
def test_each_plot_function_writes_a_valid_png(run, tmp_path, name):
    fn = getattr(plots, f"plot_{name}")
    paths = fn(run.summary, run.env, tmp_path, formats=["png"])
    assert paths == [tmp_path / f"{name}.png"]
    assert _is_png(paths[0])


def test_output_path_may_name_the_file(run, tmp_path):
    paths = plots.plot_gflops(run.summary, run.env, tmp_path / "sub" / "mine.png", formats=["png", "svg"])
    assert [p.name for p in paths] == ["mine.png", "mine.svg"] and all(p.is_file() for p in paths)


def test_speedup_has_a_panel_per_thread_count_bars_whiskers_and_hatched_absences(run):
    fig = plots.figure_speedup(run.summary, run.env, samples=run.samples)
    axes = [ax for ax in fig.axes if ax.get_ylabel()]
    assert len(axes) == 2  # threads 1 and 2
    s = run.summary[run.summary["threads"] == 1]
    ok = s[(s["status"] == "ok") & (s["algorithm"] != "im2col")]
    absent = s[(s["status"] != "ok") & (s["algorithm"] != "im2col")]
    ax = axes[0]
    filled = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_fill()]
    hatched = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch()]
    assert len(filled) == len(ok)
    assert len(hatched) == len(absent) > 0  # skipped winograd + failed fft: marked, not drawn as 0
    assert all(p.get_height() > 0 for p in filled)
    assert any(line.get_ydata()[0] == 1.0 for line in ax.get_lines())  # the baseline line
    legend = _texts(fig)
    for algo in ("naive", "im2col-numba", "gemm-direct", "winograd", "fft", "indirect", "im2col (= 1.0)"):
        assert algo in legend
    assert "skipped / failed" in legend and "baseline: im2col" in legend and "2 threads" in legend
    assert len(ax.containers) >= 6  # one bar container (+ whiskers) per algorithm


def test_speedup_ci_falls_back_to_summary_bounds_without_samples(run):
    from convbench.analysis.compare import ratio_table

    with_samples = ratio_table(run.summary, run.samples, "im2col")
    without = ratio_table(run.summary, None, "im2col")
    ok = with_samples["ci_method"] == "bootstrap"
    assert ok.any() and set(without.loc[ok, "ci_method"]) == {"summary-ci"}
    assert (with_samples.loc[ok, "ci_low"] <= with_samples.loc[ok, "speedup"]).all()
    assert (with_samples.loc[ok, "speedup"] <= with_samples.loc[ok, "ci_high"]).all()


def test_gflops_draws_the_sgemm_ceiling_per_thread_count(run):
    fig = plots.figure_gflops(run.summary, run.env)
    axes = [ax for ax in fig.axes if ax.get_ylabel()]
    ceilings = [line.get_ydata()[0] for ax in axes for line in ax.get_lines() if line.get_linestyle() == "-."]
    assert ceilings == [80.0, 140.0]
    assert "GFLOP/s" in axes[0].get_ylabel()


def test_memory_and_accuracy_are_log_scale_with_absences_marked(run):
    for fig in (plots.figure_memory(run.summary, run.env), plots.figure_accuracy(run.summary, run.env)):
        axes = [ax for ax in fig.axes if ax.get_ylabel()]
        assert len(axes) == 1 and axes[0].get_yscale() == "log"
        assert any(p.get_hatch() for p in axes[0].patches)
    text = _texts(plots.figure_memory(run.summary, run.env))
    assert "measured" in text and "analytic" in text


def test_roofline_has_a_panel_per_thread_count(run):
    fig = plots.figure_roofline(run.summary, run.env)
    axes = [ax for ax in fig.axes if ax.get_xlabel()]
    assert len(axes) == 2 and all(ax.get_xscale() == "log" for ax in axes)
    assert "sgemm 80 GFLOP/s" in _texts(fig) and "copy 12.0 GB/s" in _texts(fig)


def test_winner_map_finds_the_grid_and_names_winners(run):
    from convbench.plots.choice import grid_families

    families, loose = grid_families(run.summary)
    g = {f["name"]: f for f in families}
    assert set(g) == {"g3x3", "pw"} and loose == ["conv1"]
    assert {g["g3x3"]["x"], g["g3x3"]["y"]} == {"channels", "size"}
    text = _texts(plots.figure_winner_map(run.summary, run.env))
    assert "grid g3x3" in text and "winograd" in text and "layers outside a sweep grid" in text


def test_thread_scaling_only_with_several_thread_counts(run, one_thread, tmp_path):
    assert plots.plot_thread_scaling(one_thread.summary, one_thread.env, tmp_path) == []
    fig = plots.figure_thread_scaling(run.summary, run.env)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert any("speedup" in lab for lab in labels) and any("efficiency" in lab for lab in labels)


def test_network_view_has_best_per_layer_and_incomplete_marked(run):
    fig = plots.figure_network(run.summary, run.env)
    text = _texts(fig)
    assert "best per layer" in text and "covers 6/9 layers" in text  # winograd skips 3 layers


def test_single_thread_run_draws_every_figure(one_thread, tmp_path):
    paths = plots.plot_all(one_thread.path, tmp_path, formats=["png"],
                           only=["speedup", "winner_map", "thread_scaling"])
    assert [p.name for p in paths] == ["speedup.png", "winner_map.png"]


def test_plot_all_rejects_unknown_figure_names():
    with pytest.raises(ValueError, match="unknown figure"):
        plots.plot_all(DATA, only=["pie"])


def test_cli_plot_writes_the_requested_figures(tmp_path):
    from typer.testing import CliRunner

    from convbench.cli import app

    cli = CliRunner()
    result = cli.invoke(app, ["plot", str(DATA), "--out", str(tmp_path), "--only", "network", "--format", "png"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "network.png").is_file() and "1 files" in result.output
    bad = cli.invoke(app, ["plot", str(DATA), "--out", str(tmp_path), "--only", "pie"])
    assert bad.exit_code == 2 and "unknown figure" in bad.output
    missing = cli.invoke(app, ["plot", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such results folder" in missing.output
