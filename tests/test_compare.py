"""convbench.analysis.compare and `convbench compare`: a known slowdown is found, noise is not."""

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent / "data"))
import make_synthetic  # noqa: E402

from convbench.cli import app  # noqa: E402
from convbench.analysis.compare import CompareError, bootstrap_ratio_ci, compare_runs  # noqa: E402
from convbench.results import read_results  # noqa: E402

LAYERS = make_synthetic.LAYERS[:4]
ALGOS = ["im2col", "indirect", "winograd"]
cli = CliRunner()


def _run(folder, **kw):
    kw.setdefault("layers", LAYERS)
    kw.setdefault("algorithms", ALGOS)
    kw.setdefault("threads", (1,))
    kw.setdefault("n_samples", 20)
    return make_synthetic.make_results(folder, **kw)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {
        "a": _run(root / "a", seed=1),
        "same": _run(root / "same", seed=2),
        "slow": _run(root / "slow", seed=3, scale=1.2),
    }


def test_a_20_percent_slowdown_is_detected_on_every_ok_case(runs):
    result = compare_runs(read_results(runs["a"]), read_results(runs["slow"]))
    ok = result.table[result.table["status_a"] == "ok"]
    assert len(ok) > 0 and (ok["verdict"] == "slower").all()
    assert np.allclose(ok["ratio"], 1.2, atol=0.03)
    assert ((ok["ci_low"] < 1.2) & (1.2 < ok["ci_high"])).mean() >= 0.8
    assert (ok["ci_low"] > 1.1).all()  # the whole interval beyond the 10% threshold
    assert len(result.regressions) == len(ok)


def test_identical_distributions_are_not_flagged(runs):
    result = compare_runs(read_results(runs["a"]), read_results(runs["same"]))
    ok = result.table[result.table["status_a"] == "ok"]
    assert (ok["verdict"] == "same").all()
    assert len(result.regressions) == 0 and len(result.improvements) == 0
    skipped = result.table[result.table["status_a"] == "skipped"]
    assert (skipped["verdict"] == "n/a").all()


def test_threshold_hides_significant_but_small_changes(runs):
    result = compare_runs(read_results(runs["a"]), read_results(runs["slow"]), threshold=0.3)
    assert len(result.regressions) == 0
    assert (result.table.loc[result.table["status_a"] == "ok", "ci_low"] > 1.0).all()


def test_a_change_within_a_runs_own_repetition_spread_is_not_a_regression(runs):
    a, b = read_results(runs["a"]), read_results(runs["slow"])
    a.summary["rep_spread"] = 0.3  # A's repetitions disagreed by 30%: a 20% change is no evidence
    result = compare_runs(a, b)
    assert len(result.regressions) == 0
    assert (result.table["spread_a"] == 0.3).all()


def test_normalised_times_divide_out_a_faster_machine(runs):
    a, b = read_results(runs["a"]), read_results(runs["slow"])
    for run, ref in ((a, 1e-4), (b, 1.2e-4)):  # B's machine ran 20% slower, its code did not
        for col in ("median", "ci_low", "ci_high"):
            src = {"median": "time_median_s", "ci_low": "time_ci_low_s", "ci_high": "time_ci_high_s"}[col]
            run.summary[f"time_norm_{col}"] = run.summary[src] / ref
    a.env.setdefault("calibration", {})["sgemm_gflops"] = {"1": 60.0}
    b.env.setdefault("calibration", {})["sgemm_gflops"] = {"1": 50.0}
    result = compare_runs(a, b)
    ok = result.table[result.table["status_a"] == "ok"]
    assert (ok["metric"] == "normalised").all() and (ok["verdict"] == "same").all()
    assert np.allclose(ok["ratio"], 1.0, atol=0.03)
    assert "another speed" in result.notes[0]
    raw = compare_runs(a, b, raw=True)
    assert (raw.table.loc[raw.table["status_a"] == "ok", "verdict"] == "slower").all()


def test_refuses_runs_whose_cases_do_not_match(runs, tmp_path):
    other = _run(tmp_path / "other", layers=LAYERS[:3])
    with pytest.raises(CompareError, match=r"3 case\(s\) only in A: g3x3/c32_hw8 / im2col / nhwc / float32 / 1 thread"):
        compare_runs(read_results(runs["a"]), read_results(other))


def test_a_case_that_stops_being_ok_is_a_regression(runs, tmp_path):
    b = read_results(runs["same"])
    b.summary.loc[b.summary["case_id"] == b.summary["case_id"].iloc[1], "status"] = "failed"
    result = compare_runs(read_results(runs["a"]), b)
    assert list(result.regressions["verdict"]) == ["broken"]


def test_cli_compare_exit_status(runs, tmp_path):
    same = cli.invoke(app, ["compare", str(runs["a"]), str(runs["same"]), "--fail-on-regression"])
    assert same.exit_code == 0, same.output
    slow = cli.invoke(app, ["compare", str(runs["a"]), str(runs["slow"]), "--fail-on-regression",
                            "--csv", str(tmp_path / "cmp.csv")], env={"COLUMNS": "200"})
    assert slow.exit_code == 1, slow.output
    assert "slower" in slow.output and (tmp_path / "cmp.csv").is_file()
    no_flag = cli.invoke(app, ["compare", str(runs["a"]), str(runs["slow"])])
    assert no_flag.exit_code == 0
    other = _run(tmp_path / "other", layers=LAYERS[:3])
    bad = cli.invoke(app, ["compare", str(runs["a"]), str(other)])
    assert bad.exit_code == 2 and "do not match" in bad.output


def test_bootstrap_ci_is_seeded_and_covers_the_ratio():
    rng = np.random.default_rng(0)
    a = 1.5 * np.exp(rng.normal(0, 0.03, 30))
    b = np.exp(rng.normal(0, 0.03, 30))
    lo, hi = bootstrap_ratio_ci(a, b, seed=7)
    assert (lo, hi) == bootstrap_ratio_ci(a, b, seed=7)
    assert lo < 1.5 < hi and hi - lo < 0.1
    assert np.isnan(bootstrap_ratio_ci([1.0], b)[0])
