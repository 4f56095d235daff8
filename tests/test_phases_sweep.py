"""The sweep side of phases and cache states: phases.csv, the phase pass, `cache: [warm, cold]`
as a dimension of the sweep, and old folders that have neither."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import convbench
from convbench.cli import app
from convbench.config import ConfigError, parse_config
from convbench.results import read_results
from convbench.results.io import read_phases
from convbench.sweep.phasing import ADD_UP, time_phases
from convbench.sweep.plan import plan
from convbench.sweep.session import run
from convbench.timing import TimingSettings

DATA = Path(__file__).parent / "data" / "synthetic_run"
FAST = TimingSettings(min_samples=5, min_time_s=0.0, max_time_s=0.5, target_ci=None, min_sample_time_s=0.0,
                      repeat=2)
TINY = """name: tiny
algorithms: [im2col, indirect, im2col-numba]
cache: [warm, cold]
layers:
  - {name: a, channels: 8, size: 10, kernel: 3, padding: 1, layout: [nhwc, nchw]}
"""


@pytest.fixture(scope="module")
def warm_cold(tmp_path_factory):
    out = tmp_path_factory.mktemp("wc") / "run"
    p = plan(parse_config(TINY, "tiny.yaml"))
    p.timing = FAST
    outcome = run(p, out, isolation=False)
    return out, outcome


def test_cache_states_are_a_dimension_of_the_sweep_with_their_own_case_keys(warm_cold):
    out, _ = warm_cold
    s = read_results(out).summary
    assert set(s["cache"]) == {"warm", "cold"} and (s["status"] == "ok").all()
    assert len(s) == 3 * 2 * 2 and s["case_id"].is_unique
    cold = s[s["cache"] == "cold"]
    assert cold["case_id"].str.contains(r"\|cold\|").all()
    assert not s.loc[s["cache"] == "warm", "case_id"].str.contains("warm").any()  # warm keeps the old key
    assert (cold["loops"] == 1).all()  # one call a sample, each after an eviction
    samples = read_results(out).samples
    assert set(samples["cache"]) == {"warm", "cold"}


def test_env_json_says_how_cold_was_made_and_from_which_cache_sizes(warm_cold):
    out, _ = warm_cold
    env = json.loads((out / "env.json").read_text())
    cold = env["cold_cache"]
    assert cold["method"] == "stream" and cold["buffer_bytes"] >= 2 * cold["cache_sizes"]["llc_bytes"]
    assert env["cache_states"] == ["warm", "cold"]


def test_phases_csv_has_every_ok_case_and_the_phases_each_algorithm_declares(warm_cold):
    out, _ = warm_cold
    s, ph = read_results(out).summary, read_phases(out)
    assert set(ph["case_id"]) == set(s["case_id"])
    declared = {"im2col": ["pack", "gemm"], "im2col-numba": ["pack", "gemm"], "indirect": ["gemm"]}
    nhwc = ph[(ph["layout"] == "nhwc") & (ph["cache"] == "warm")]
    for algo, phases in declared.items():
        assert list(nhwc.loc[nhwc["algorithm"] == algo, "phase"]) == phases, algo
    nchw_indirect = ph[(ph["layout"] == "nchw") & (ph["algorithm"] == "indirect") & (ph["cache"] == "warm")]
    assert list(nchw_indirect["phase"]) == ["pack", "gemm", "transform_out"]  # the layout conversions
    # the summary's ratio is the sum of the shares of its phases
    for cid, g in ph.groupby("case_id"):
        row = s.set_index("case_id").loc[cid]
        assert g["share"].sum() == pytest.approx(row["phase_sum_ratio"], rel=1e-9)
        assert bool(row["phases_add_up"]) == (abs(row["phase_sum_ratio"] - 1) <= ADD_UP)
    assert (ph["time_median_s"] > 0).all() and (ph["n_samples"] >= FAST.min_samples).all()


def test_no_phases_writes_no_phase_rows(tmp_path):
    p = plan(parse_config(TINY.replace("cache: [warm, cold]", "cache: warm"), "tiny.yaml"), phases=False,
             algorithms=["im2col"])
    p.timing = FAST
    run(p, tmp_path / "run", isolation=False)
    assert len(read_phases(tmp_path / "run")) == 0
    assert read_results(tmp_path / "run").summary["phase_sum_ratio"].isna().all()


def test_a_plain_call_is_one_other_phase_that_is_the_whole_call():
    x = np.random.default_rng(0).standard_normal((256, 256))
    got = time_phases(lambda a: a @ a, x, FAST)
    assert [p[0] for p in got["phases"]] == ["other"]
    assert got["phases"][0][1] == 1


def test_steps_sharing_a_phase_are_reported_as_one():
    x = np.ones((64, 64))
    call = convbench.phased(("pack", lambda a: a * 2), ("gemm", lambda a: a @ a), ("pack", lambda a: a + 1))
    got = time_phases(call, x, FAST)
    assert [(p[0], p[1]) for p in got["phases"]] == [("pack", 2), ("gemm", 1)]


def test_an_old_folder_reads_as_warm_with_no_phases(tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(DATA, folder)
    res = read_results(folder)
    assert set(res.summary["cache"]) == {"warm"} and set(res.samples["cache"]) == {"warm"}
    assert len(read_phases(folder)) == 0
    result = CliRunner().invoke(app, ["select", str(folder)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("text, fragment", [
    ("cache: hot\n", "cache"),
    ("cache: []\n", "cache"),
])
def test_a_bad_cache_state_in_a_config_names_the_field(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_config(text + "layers:\n  - {name: a, channels: 2, size: 5, kernel: 3}\n", "bad.yaml")


def test_a_bad_cache_option_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["run", "smoke", "--cache", "hot", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--cache takes warm, cold" in result.output
    assert "Traceback" not in result.output


def test_compare_and_select_keep_warm_and_cold_apart(warm_cold):
    out, _ = warm_cold
    from convbench.analysis.select import network_totals, select_best

    s = read_results(out).summary
    best = select_best(s)
    assert len(best) == 4 and set(best["cache"]) == {"warm", "cold"}  # 2 layouts x 2 cache states
    totals = network_totals(s)
    assert len(totals) == 3 * 4
    result = CliRunner().invoke(app, ["compare", str(out), str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out / "summary.csv")["cache"].notna().all()


def test_the_report_judges_cold_cases_and_sets_pack_share_against_indirects_gain(warm_cold):
    from convbench.analysis.report import render_report

    out, _ = warm_cold
    text = render_report(read_results(out))
    assert "## Verdicts with cold caches" in text
    section = text[text.index("## Where indirect's gain comes from (phases)"):]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "layer class" not in line
            and "---" not in line]
    assert {r.split("|")[2].strip() for r in rows} == {"warm", "cold"}  # a row per cache state
