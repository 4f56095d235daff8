"""convbench.analysis.select and `convbench select`: the fastest correct algorithm per layer."""

import math
import shutil
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from convbench.cli import app
from convbench.analysis.select import network_comparison, select_best

DATA = Path(__file__).parent / "data" / "synthetic_run"


def _frame():
    """Two layers with a known answer.

    L1: naive is fastest but failed; fft is next but beyond its tolerance
    (5e-4); mine (not registered) is within its error_tolerance column; im2col
    is slowest. The answer is `mine`. L2: only im2col is ok.
    """
    rows = [
        ("L1", "naive", "failed", 1.0, 1e-1, 1e-4),
        ("L1", "fft", "ok", 2.0, 1e-3, 5e-4),
        ("L1", "mine", "ok", 3.0, 1e-3, 1e-2),
        ("L1", "im2col", "ok", 4.0, 1e-7, 1e-4),
        ("L2", "im2col", "ok", 10.0, 1e-7, 1e-4),
        ("L2", "mine", "skipped", math.nan, math.nan, 1e-2),
    ]
    df = pd.DataFrame(rows, columns=["layer", "algorithm", "status", "time_median_s", "max_rel_err", "error_tolerance"])
    df["layout"], df["dtype"], df["threads"] = "nhwc", "float32", 1
    df["layer_class"], df["count"] = "x", [2, 2, 2, 2, 3, 3]
    df["time_ci_low_s"], df["time_ci_high_s"] = df["time_median_s"] * 0.95, df["time_median_s"] * 1.05
    df["gflops"], df["flops"] = 1.0, 1e9
    return df


def test_select_picks_the_fastest_ok_case_within_tolerance():
    sel = select_best(_frame()).set_index("layer")
    assert sel.loc["L1", "algorithm"] == "mine"
    assert sel.loc["L1", "runner_up"] == "im2col" and sel.loc["L1", "margin"] == 4.0 / 3.0
    assert sel.loc["L1", "excluded"] == "fft" and bool(sel.loc["L1", "clear_winner"])
    assert sel.loc["L2", "algorithm"] == "im2col" and sel.loc["L2", "candidates"] == 1


def test_network_best_per_layer_against_one_algorithm_everywhere():
    net = network_comparison(_frame()).set_index("choice")
    assert net.loc["best per layer", "total_s"] == 2 * 3.0 + 3 * 10.0
    assert net.loc["im2col", "total_s"] == 2 * 4.0 + 3 * 10.0 and bool(net.loc["im2col", "complete"])
    assert net.loc["im2col", "vs_best"] == (2 * 4.0 + 3 * 10.0) / 36.0
    assert not net.loc["mine", "complete"] and math.isnan(net.loc["mine", "vs_best"])
    assert net.loc["fft", "layers_ok"] == 0  # beyond tolerance counts as not ok


def test_cli_select_writes_selection_csv(tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(DATA, folder)
    result = CliRunner().invoke(app, ["select", str(folder)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    sel = pd.read_csv(folder / "selection.csv")
    assert len(sel) == 18 and set(sel["algorithm"]) <= {"winograd", "im2col"}
    assert "best per layer" in result.output
    bad = CliRunner().invoke(app, ["select", str(tmp_path / "nope")])
    assert bad.exit_code == 2 and "no such results folder" in bad.output
