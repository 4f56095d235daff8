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
    df["layout"], df["dtype"], df["threads"], df["cache"] = "nhwc", "float32", 1, "warm"
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


def _select_best_per_group(summary):
    """The oracle: select_best as it was, one pandas group at a time."""
    from convbench.analysis.select import eligible
    from convbench.results.schema import VARIANT_KEYS

    def num(v):
        return math.nan if v is None else float(v)

    ok = eligible(summary)
    rows = []
    for key, g in summary.groupby(VARIANT_KEYS, sort=False):
        good = g[ok.loc[g.index]].sort_values("time_median_s", kind="stable")
        bad = g[(g["status"] == "ok") & ~ok.loc[g.index]]
        first = g.iloc[0]
        rec = dict(zip(VARIANT_KEYS, key))
        rec.update(layer_class=first["layer_class"], count=int(first["count"]), algorithm="",
                   time_median_s=math.nan, time_ci_low_s=math.nan, time_ci_high_s=math.nan,
                   gflops=math.nan, speedup_vs_baseline=math.nan, runner_up="", runner_up_time_s=math.nan,
                   margin=math.nan, clear_winner=False, candidates=len(good),
                   excluded=",".join(bad["algorithm"].astype(str)))
        if len(good):
            best = good.iloc[0]
            rec.update(algorithm=best["algorithm"], time_median_s=best["time_median_s"],
                       time_ci_low_s=best["time_ci_low_s"], time_ci_high_s=best["time_ci_high_s"],
                       gflops=best["gflops"], speedup_vs_baseline=best.get("speedup_vs_baseline", math.nan))
            if len(good) > 1:
                second = good.iloc[1]
                rec.update(runner_up=second["algorithm"], runner_up_time_s=second["time_median_s"],
                           margin=second["time_median_s"] / best["time_median_s"],
                           clear_winner=bool(num(best["time_ci_high_s"]) < num(second["time_ci_low_s"])))
            else:
                rec["clear_winner"] = True
        rows.append(rec)
    return pd.DataFrame(rows)


def test_select_best_equals_the_per_group_code_on_the_shipped_runs():
    from convbench.results import read_results

    root = Path(__file__).parent.parent / "results"
    frames = [_frame()] + [read_results(root / name, samples=False).summary for name in ("paper", "mobilenet")]
    frames.append(read_results(DATA, samples=False).summary)
    for summary in frames:
        want, got = _select_best_per_group(summary), select_best(summary)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_cli_select_lists_at_most_max_rows(tmp_path, monkeypatch):
    import convbench.cli.render as render

    monkeypatch.setattr(render, "MAX_TABLE_ROWS", 5)
    folder = tmp_path / "run"
    shutil.copytree(DATA, folder)
    result = CliRunner().invoke(app, ["select", str(folder)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "... and 13 more rows: every layer is in" in result.output
    assert len(pd.read_csv(folder / "selection.csv")) == 18  # the file has them all
