"""Runs with repetitions: each in its own worker process, pinned, combined, resumable."""

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from convbench.cli import app
from convbench.results import read_results
from convbench.results.io import write_text_atomic

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
cli = CliRunner()
COMMON = [str(CONFIGS / "smoke.yaml"), "--quick", "-a", "im2col,indirect", "-l", "conv3x3,pw1x1", "-t", "1"]


def _run(*args):
    return cli.invoke(app, ["run", *args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def two_reps(tmp_path_factory):
    out = tmp_path_factory.mktemp("reps") / "run"
    result = _run(*COMMON, "--repeat", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_every_case_is_measured_once_per_repetition_each_in_a_fresh_worker(two_reps):
    res = read_results(two_reps)
    reps = pd.read_csv(two_reps / "repetitions.csv")
    assert sorted(reps.groupby("case_id").size().unique()) == [2]
    assert set(res.samples["repetition"]) == {0, 1}
    ok = res.summary[res.summary["status"] == "ok"]
    assert len(ok) == len(res.summary) == 8 and (ok["n_repetitions"] == 2).all()
    env = json.loads((two_reps / "env.json").read_text())
    assert env["worker"]["starts"] >= 2  # one worker process per repetition
    assert env["timing"]["repeat"] == 2 and "repetitions" in env and "noise" in env


def test_one_thread_cases_run_pinned_and_every_sample_carries_the_reference_kernel(two_reps):
    res = read_results(two_reps)
    assert res.summary["pinned_cpus"].astype(str).str.len().gt(0).all()
    assert res.samples["ref_time_s"].gt(0).all()
    assert res.summary["ref_gflops"].gt(0).all()


def test_speedup_is_the_per_round_ratio_with_its_interval(two_reps):
    res = read_results(two_reps)
    ok = res.summary[res.summary["algorithm"] == "indirect"]
    s = res.samples
    for row in ok.to_dict("records"):
        base = s[(s["layer"] == row["layer"]) & (s["layout"] == row["layout"]) & (s["algorithm"] == "im2col")]
        mine = s[s["case_id"] == row["case_id"]]
        joined = mine.merge(base, on=["repetition", "round"], suffixes=("", "_b"))
        assert row["speedup_vs_baseline"] == pytest.approx((joined["time_s_b"] / joined["time_s"]).median())
        assert row["speedup_ci_low"] <= row["speedup_vs_baseline"] <= row["speedup_ci_high"]


def test_resume_measures_only_the_missing_repetitions(two_reps, tmp_path):
    folder = tmp_path / "cut"
    folder.mkdir()
    for name in ("env.json", "config.yaml", "summary.csv", "repetitions.csv", "samples.csv"):
        (folder / name).write_bytes((two_reps / name).read_bytes())
    # as if killed after the first pass: no summary rows, repetition 0 only
    header = (two_reps / "summary.csv").read_text().splitlines()[0]
    write_text_atomic(folder / "summary.csv", header + "\r\n")
    for name in ("repetitions.csv", "samples.csv"):
        df = pd.read_csv(folder / name)
        df[df["repetition"] == 0].to_csv(folder / name, index=False)
    kept = pd.read_csv(folder / "samples.csv")
    result = _run("--resume", str(folder))
    assert result.exit_code == 0, result.output
    res = read_results(folder)
    assert len(res.summary) == 8 and (res.summary["n_repetitions"] == 2).all()
    again = res.samples[res.samples["repetition"] == 0].reset_index(drop=True)
    assert again["time_s"].tolist() == kept["time_s"].tolist()  # repetition 0 was not measured again
    assert (res.samples["repetition"] == 1).sum() > 0


def test_repeat_must_be_positive():
    result = _run(*COMMON, "--repeat", "0")
    assert result.exit_code == 2 and "repeat" in result.output


def test_doctor_renders_a_verdict(monkeypatch):
    from convbench.machine import noise

    findings = {"per_core": {"0": {"median_gflops": 50.0, "p10_gflops": 45.0, "p90_gflops": 55.0,
                                   "spread": 0.22, "drift": 0.01, "n": 10}},
                "load": {"others_busy_cores": 0.0, "loadavg_1min": 0.1}, "frequency": {}}
    findings["verdict"] = noise.verdict(findings)
    monkeypatch.setattr(noise, "diagnose", lambda seconds: findings)
    result = cli.invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "very noisy" in result.output and "--repeat 5" in result.output
    short = cli.invoke(app, ["doctor", "--seconds", "2"])
    assert short.exit_code == 2 and "at least 10" in short.output
