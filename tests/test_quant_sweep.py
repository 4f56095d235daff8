"""8-bit rows in a sweep (issue 24): `dtype: [float32, u8s8]` in a config and `--dtype` on the
command line, u8s8 answers judged in LSB against the exact reference (0 ok, 1 ok and said, more
failed), the quantization parameters in every row, float-only algorithms skipped with the reason,
phases and cold cache working for u8s8 rows, and older folders without the new columns still read."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import convbench
from convbench.cli import app
from convbench.config import parse_config
from convbench.registry import register, unregister
from convbench.results import read_results
from convbench.results.io import read_phases
from convbench.results.schema import ADDED_IN_6, SUMMARY_COLUMNS
from convbench.sweep.plan import plan
from convbench.sweep.session import run
from convbench.timing import TimingSettings

FAST = TimingSettings(min_samples=3, min_time_s=0.0, max_time_s=0.3, target_ci=None, min_sample_time_s=0.0,
                      repeat=2)
TINY = """name: tiny8
algorithms: [naive, winograd]
baseline: naive
cache: [warm, cold]
layers:
  - {name: a, channels: 4, size: 6, kernel: 3, padding: 1, layout: [nhwc, nchw], dtype: [float32, u8s8]}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("q") / "run"
    p = plan(parse_config(TINY, "tiny8.yaml"))
    p.timing = FAST
    run(p, out, isolation=False)
    return out


def _rows(summary, **where):
    mask = np.ones(len(summary), bool)
    for k, v in where.items():
        mask &= (summary[k] == v).to_numpy()
    return summary[mask]


def test_a_config_sweeps_float32_and_u8s8_with_naive_ok_and_winograd_skipped(tiny):
    s = read_results(tiny).summary
    assert set(s["dtype"]) == {"float32", "u8s8"} and len(s) == 2 * 2 * 2 * 2  # algos x layouts x dtypes x caches
    u8 = _rows(s, dtype="u8s8")
    naive = _rows(u8, algorithm="naive")
    assert (naive["status"] == "ok").all() and len(naive) == 4
    assert (naive["max_abs_err_lsb"] <= 1).all() and naive["max_rel_err"].isna().all()
    assert (naive["error_tolerance"] == 1).all() and (naive["gflops"] > 0).all()
    wino = _rows(u8, algorithm="winograd")
    assert (wino["status"] == "skipped").all()
    assert set(wino["reason"]) == {"winograd runs float32, float64 only"}


def test_float_rows_keep_their_relative_error_and_leave_the_8bit_columns_empty(tiny):
    f32 = _rows(read_results(tiny).summary, dtype="float32", status="ok")
    assert len(f32) == 8 and (f32["max_rel_err"] < 1e-4).all()
    assert f32["max_abs_err_lsb"].isna().all() and f32["quant"].isna().all()


def test_every_u8s8_row_records_the_drawn_quantization_parameters(tiny):
    s = read_results(tiny).summary
    _, qw = convbench.ConvSpec(batch=1, in_channels=4, out_channels=4, height=6, width=6, kernel=3, padding=1,
                               layout="nhwc", dtype="u8s8").random_inputs(int(s["seed"].iloc[0]))
    u8 = _rows(s, dtype="u8s8")
    assert set(u8["quant"]) == {qw.describe()}  # skipped rows too: the layer's draw, from the seed
    assert "x_zero=" in qw.describe() and "w_scale=[" in qw.describe()


def test_phases_and_cold_cache_work_for_u8s8_rows(tiny):
    s = read_results(tiny).summary
    cold = _rows(s, dtype="u8s8", algorithm="naive", cache="cold")
    assert len(cold) == 2 and (cold["status"] == "ok").all() and (cold["loops"] == 1).all()
    phases = read_phases(tiny)
    u8 = phases[(phases["dtype"] == "u8s8") & (phases["algorithm"] == "naive")]
    assert set(u8["cache"]) == {"warm", "cold"} and "gemm" in set(u8["phase"])
    assert set(phases.loc[phases["dtype"] == "u8s8", "algorithm"]) == {"naive"}


def test_an_old_folder_without_the_8bit_columns_still_reads(tiny, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny, old)
    for name in ("summary.csv", "repetitions.csv"):
        df = pd.read_csv(old / name)
        df[df["dtype"] == "float32"].drop(columns=ADDED_IN_6["summary.csv"]).to_csv(old / name, index=False)
    samples = pd.read_csv(old / "samples.csv")
    samples[samples["dtype"] == "float32"].to_csv(old / "samples.csv", index=False)
    env = json.loads((old / "env.json").read_text())
    (old / "env.json").write_text(json.dumps({**env, "schema_version": 5}))
    s = read_results(old).summary
    assert len(s) == 8 and s["max_abs_err_lsb"].isna().all() and s["quant"].isna().all()
    assert [c for c in SUMMARY_COLUMNS if c not in s.columns] == []


# -- the tolerance of one LSB ----------------------------------------------------------


def _off_by(lsb: int):
    class OffBy(convbench.Algorithm):
        name = f"t-u8-off-by-{lsb}"
        dtypes = ("u8s8",)

        def prepare(self, spec, qw):
            def call(x):
                y = convbench.reference(spec, x, qw).astype(np.int16)
                y.flat[0] = y.flat[0] + lsb if y.flat[0] + lsb <= 255 else y.flat[0] - lsb
                return y.astype(np.uint8)
            return call
    return OffBy


@pytest.fixture
def off_by():
    algos = [register(_off_by(k)) for k in (0, 1, 2)]
    yield [a.name for a in algos]
    for a in algos:
        unregister(a.name)


def test_u8s8_answers_are_ok_at_zero_ok_and_noted_at_one_and_failed_beyond(off_by, tmp_path):
    config = parse_config(TINY.replace("algorithms: [naive, winograd]", f"algorithms: [{', '.join(off_by)}]")
                          .replace("cache: [warm, cold]", "cache: [warm]")
                          .replace("dtype: [float32, u8s8]", "dtype: u8s8"), "t.yaml")
    p = plan(config)
    p.timing = FAST
    run(p, tmp_path / "o", isolation=False)
    s = read_results(tmp_path / "o").summary.set_index("algorithm")
    zero, one, two = (s.loc[n] for n in off_by)
    assert (zero["status"] == "ok").all() and (zero["max_abs_err_lsb"] == 0).all() and (zero["reason"] == "").all()
    assert (one["status"] == "ok").all() and (one["max_abs_err_lsb"] == 1).all()
    assert one["reason"].str.contains("1 LSB from the exact reference").all()
    assert (two["status"] == "failed").all() and (two["max_abs_err_lsb"] == 2).all()
    assert two["reason"].str.contains("2 LSB from the exact reference, more than the 1 allowed").all()


# -- the command line ------------------------------------------------------------------


def test_run_dtype_option_sweeps_every_layer_in_those_dtypes(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.replace("dtype: [float32, u8s8]", "dtype: float64").replace("cache: [warm, cold]", ""))
    # measured in the isolated worker, as a run is by default: 8-bit rows cross the process boundary
    result = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "o"), "--quick",
                                      "--dtype", "u8s8", "-a", "naive", "--no-phases"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    s = read_results(tmp_path / "o").summary
    assert set(s["dtype"]) == {"u8s8"} and (s["status"] == "ok").all()
    assert (s["max_abs_err_lsb"] == 0).all() and s["quant"].str.contains("x_zero=").all()
    assert "GOP/s" in result.output  # the run's own tables head 8-bit rates by their unit


def test_a_bad_dtype_option_names_the_choices(tmp_path):
    result = CliRunner().invoke(app, ["run", "--out", str(tmp_path / "o"), "--dtype", "int4"])
    assert result.exit_code != 0 and "u8s8" in result.output and "int4" in result.output


def test_a_config_dtype_u8s8_is_accepted_and_a_typo_suggests_it():
    assert parse_config("layers:\n  - {name: a, channels: 2, size: 5, kernel: 3, dtype: [float32, u8s8]}\n",
                        "c.yaml").layers[0].dtypes == ("float32", "u8s8")
    with pytest.raises(Exception, match="u8s8"):
        parse_config("layers:\n  - {name: a, channels: 2, size: 5, kernel: 3, dtype: u8s9}\n", "c.yaml")


def test_layers_counts_8bit_work_in_mop_and_bytes_at_one_byte():
    args = ["layers", "--dtype", "u8s8", "-a", "naive", "--format", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows and {r["dtype"] for r in rows} == {"u8s8"}
    table = CliRunner().invoke(app, ["layers", "--dtype", "u8s8", "-a", "naive"], env={"COLUMNS": "250"})
    assert "MOP" in table.output and "MFLOP" not in table.output and "GOP (8-bit)" in table.output
    mixed = CliRunner().invoke(app, ["layers", "--dtype", "float32,u8s8", "-a", "naive"], env={"COLUMNS": "250"})
    assert "MFLOP (MOP if u8s8)" in mixed.output
    both = CliRunner().invoke(app, ["layers", "--dtype", "float32,u8s8", "-a", "naive", "--format", "json"])
    rows = json.loads(both.output)
    by = {(r["layer"], r["layout"], r["dtype"]): r["workspace_bytes:naive"] for r in rows}
    nchw = [(k, v) for k, v in by.items() if k[1] == "nchw" and k[2] == "u8s8"]
    assert nchw and all(v > 0 and by[(k[0], k[1], "float32")] == 4 * v for k, v in nchw)  # one byte a value


def test_list_shows_each_algorithms_dtypes():
    result = CliRunner().invoke(app, ["list", "--format", "json"])
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["naive"]["dtypes"] == "float32, float64, u8s8"
    assert rows["winograd"]["dtypes"] == "float32, float64"


# -- figures and tables ----------------------------------------------------------------


def _ylabels(fig):
    return [(ax.get_title(loc="left"), ax.get_ylabel()) for ax in fig.axes if ax.get_ylabel()]


def test_throughput_panels_say_gop_for_8bit_and_draw_no_float_ceiling_there(tiny):
    from convbench.plots import figure_gflops

    res = read_results(tiny)
    env = {**res.env, "calibration": {"sgemm_gflops": {"1": 50.0}}}
    fig = figure_gflops(res.summary, env)
    labels = _ylabels(fig)
    assert labels and all(("u8s8" in t) == y.startswith("GOP/s") for t, y in labels)
    assert all(("u8s8" in t) != y.startswith("GFLOP/s") for t, y in labels)
    for ax in fig.axes:
        ceiling = [t for t in ax.texts if "sgemm" in t.get_text()]
        assert bool(ceiling) == ("float32" in ax.get_title(loc="left")), ax.get_title(loc="left")
    assert "GOP/s on 8-bit panels" in fig.texts[0].get_text() or any(
        "GOP/s on 8-bit panels" in t.get_text() for t in fig.texts)


def test_accuracy_panels_show_lsb_for_8bit_rows(tiny):
    from convbench.plots import figure_accuracy

    labels = _ylabels(figure_accuracy(read_results(tiny).summary, {}))
    assert {y for t, y in labels if "u8s8" in t} == {"max error (LSB, exact reference)"}
    assert {y for t, y in labels if "float32" in t} == {"max relative error (log)"}


def test_the_roofline_gives_8bit_cases_panels_of_their_own(tiny):
    from convbench.plots import figure_roofline

    fig = figure_roofline(read_results(tiny).summary, {})
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_xlabel()]
    assert titles == ["1 thread", "1 thread, 8-bit (u8s8)"]
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_xlabel()] == [
        "GFLOP/s (direct-equivalent, log)", "GOP/s (direct-equivalent, log)"]


def test_the_html_case_table_heads_rates_by_unit_and_shows_the_8bit_columns(tiny):
    from convbench.html.content import case_rows

    s = read_results(tiny).summary
    cols, rows = case_rows(s)
    assert "GFLOP/s or GOP/s (8-bit)" in cols and "gflops" not in cols
    assert cols.index("max_abs_err_lsb") == cols.index("max_rel_err") + 1 and "quant" in cols
    cols8, _ = case_rows(s[s["dtype"] == "u8s8"])
    assert "GOP/s" in cols8
    cols32, _ = case_rows(s[s["dtype"] == "float32"])
    assert "gflops" in cols32 and "max_abs_err_lsb" not in cols32


def test_the_run_tables_head_rates_by_unit(tiny):
    from convbench.cli.render import _rate

    s = read_results(tiny).summary
    assert _rate(s) == "GFLOP/s or GOP/s (8-bit)"
    assert _rate(s[s["dtype"] == "u8s8"]) == "GOP/s" and _rate(s[s["dtype"] == "float32"]) == "GFLOP/s"


def test_plot_all_and_the_report_page_draw_a_run_with_8bit_rows(tiny):
    from convbench.html import write_html

    path = write_html(tiny)
    text = path.read_text()
    assert "GOP/s" in text and "max_abs_err_lsb" in text


def test_the_headline_never_pools_float_and_8bit_speedups():
    from convbench.plots import figure_headline

    rows = []
    for dtype, ratio in (("float32", 1.5), ("u8s8", 3.0)):
        for algo, t in (("indirect", 1.0), ("im2col-numba", ratio)):
            rows.append({"layer": "a", "layer_class": "3x3", "layout": "nhwc", "dtype": dtype, "threads": 1,
                         "cache": "warm", "status": "ok", "algorithm": algo, "time_median_s": t})
    both = pd.DataFrame(rows)
    fig = figure_headline(both, {})
    assert "(float layers)" in fig._suptitle.get_text()
    assert [round(y, 6) for line in fig.axes[0].lines for y in line.get_ydata() if y not in (1.0, 1.62)] == [1.5]
    only8 = figure_headline(both[both["dtype"] == "u8s8"], {})
    assert "(8-bit u8s8 layers)" in only8._suptitle.get_text()
    assert "layers)" not in figure_headline(both[both["dtype"] == "float32"], {})._suptitle.get_text()
