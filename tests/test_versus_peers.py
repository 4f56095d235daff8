"""How far from production: best convbench algorithm vs best peer, per layer and
per network, in select, report.md and the figures (synthetic results with peers)."""

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent / "data"))
import make_synthetic  # noqa: E402

from convbench.analysis.peers import is_peer, network_versus_peers, versus_peers, write_versus_peers  # noqa: E402
from convbench.cli import app  # noqa: E402
from convbench.results import read_results  # noqa: E402

DATA = Path(__file__).parent / "data" / "synthetic_run"
LAYERS = make_synthetic.LAYERS[:2] + make_synthetic.LAYERS[-2:]  # conv1 (s2), one 3x3, two 1x1
ALGOS = ["im2col", "winograd", "indirect", "onednn", "torch"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    # synthetic speeds: onednn 28 GFLOP/s, torch 22; convbench's best is winograd (40) on the 3x3
    # layer, im2col elsewhere (30 on conv1, 45 on 1x1)
    patch = pytest.MonkeyPatch()
    patch.setitem(make_synthetic.GFLOPS, "onednn", 28.0)
    patch.setitem(make_synthetic.GFLOPS, "torch", 22.0)
    try:
        folder = make_synthetic.make_results(tmp_path_factory.mktemp("peers") / "run", threads=(1,),
                                             n_samples=12, layers=LAYERS, algorithms=ALGOS)
    finally:
        patch.undo()
    return read_results(folder)


def test_per_layer_best_convbench_against_best_peer(run):
    table = versus_peers(run.summary, run.samples)
    assert list(table["layer"]) == [l[0] for l in LAYERS]
    assert set(table["peer"]) == {"onednn"} and not set(table["convbench"]) & {"onednn", "torch"}
    want = {"conv1": 30 / 28, "g3x3/c16_hw8": 40 / 28, "pw/c32": 45 / 28, "pw/c64": 45 / 28}
    for r in table.to_dict("records"):
        assert r["ratio"] == pytest.approx(want[r["layer"]], rel=0.05), r["layer"]
        assert r["ci_low"] <= r["ratio"] <= r["ci_high"]
        assert r["ci_method"] == "bootstrap"
        assert r["ratio"] == pytest.approx(r["peer_time_s"] / r["convbench_time_s"])
    assert table.set_index("layer").loc["g3x3/c16_hw8", "convbench"] == "winograd"
    assert table.set_index("layer").loc["pw/c32", "verdict"] == "convbench faster"


def test_network_ratio_weighs_layers_by_count(run):
    layers = versus_peers(run.summary, run.samples)
    net = network_versus_peers(layers, run.summary)
    assert len(net) == 1
    r = net.iloc[0]
    ours = (layers["count"] * layers["convbench_time_s"]).sum()
    theirs = (layers["count"] * layers["peer_time_s"]).sum()
    assert r["ratio"] == pytest.approx(theirs / ours)
    assert r["ci_low"] < r["ratio"] < r["ci_high"]
    assert (r["layers_compared"], r["layers"]) == (4, 4)


def test_a_layer_no_peer_got_right_is_left_out_of_the_network(run):
    summary = run.summary.copy()
    peer_rows = (summary["layer"] == "pw/c64") & summary["algorithm"].isin(["onednn", "torch"])
    summary.loc[peer_rows, "status"] = "failed"
    torch_only = (summary["layer"] == "conv1") & (summary["algorithm"] == "onednn")
    summary.loc[torch_only, "status"] = "skipped"
    layers = versus_peers(summary, run.samples).set_index("layer")
    assert layers.loc["pw/c64", "peer"] == "" and math.isnan(layers.loc["pw/c64", "ratio"])
    assert layers.loc["conv1", "peer"] == "torch"  # the best peer that is ok
    net = network_versus_peers(layers.reset_index(), summary).iloc[0]
    assert (net["layers_compared"], net["layers"]) == (3, 4)


def test_without_peers_nothing_is_written_and_select_is_unchanged(tmp_path):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(DATA, folder)
    assert write_versus_peers(read_results(folder)) is None
    result = CliRunner().invoke(app, ["select", str(folder)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "production peers" not in result.output
    assert not (folder / "selection_peers.csv").exists()


def test_select_shows_convbench_against_the_best_peer(run):
    result = CliRunner().invoke(app, ["select", str(run.path)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "convbench vs production peers" in result.output and "network" in result.output
    saved = pd.read_csv(run.path / "selection_peers.csv")
    assert set(saved["peer"]) == {"onednn"}
    assert (run.path / "selection_peers_network.csv").is_file()


def test_report_has_a_section_against_the_peers(run):
    from convbench.analysis.report import render_report

    text = render_report(run)
    assert "## Against production peers" in text
    section = text[text.index("## Against production peers"):]
    assert "winograd" in section and "onednn" in section and "x [" in section


def test_env_peers_decide_what_is_a_peer():
    assert is_peer("onednn") and is_peer("onnxruntime") and not is_peer("im2col")
    assert is_peer("my-lib", {"peers": ["my-lib"]}) and not is_peer("torch", {"peers": []})


def test_figures_draw_peers_hatched_and_grey(run):
    from matplotlib.colors import to_rgb

    from convbench.plots import _common as c
    from convbench.plots.speed import figure_gflops

    fig = figure_gflops(run.summary, run.env)
    hatched = [p for ax in fig.axes for p in ax.patches if p.get_hatch() == c.PEER_HATCH]
    plain = [p for ax in fig.axes for p in ax.patches if not p.get_hatch()]
    assert hatched and plain
    for p in hatched:
        r, g, b = to_rgb(p.get_facecolor())
        assert abs(r - g) < 1e-6 and abs(g - b) < 1e-6  # grey
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "onednn (peer)" in legend and "torch (peer)" in legend and "indirect" in legend
    assert np.all([c.peer_style(a) == {} for a in ("im2col", "indirect")])
    assert c.peer_style("torch", line=True) == {"ls": "--"}
