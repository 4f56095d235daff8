"""Results folders: the schema, never overwriting, reading back, merging."""

import json
import math

import pandas as pd
import pytest

from convbench.analysis.select import network_totals, select_best
from convbench.results import (
    sample_row,
    REQUIRED_COLUMNS, SAMPLE_COLUMNS, SCHEMA_VERSION, SUMMARY_COLUMNS, ResultsError, ResultsWriter,
    merge_results, read_results,
)


def test_summary_columns_hold_the_required_ones_once():
    assert len(set(SUMMARY_COLUMNS)) == len(SUMMARY_COLUMNS)
    assert set(REQUIRED_COLUMNS) <= set(SUMMARY_COLUMNS)
    positions = [SUMMARY_COLUMNS.index(c) for c in REQUIRED_COLUMNS]
    assert positions == sorted(positions)  # the documented order is kept


def _row(i, layer="L", algorithm="a", median=1.0, status="ok", **extra):
    row = {c: None for c in SUMMARY_COLUMNS}
    row.update(case_index=i, case_id=f"{layer}|{algorithm}", layer=layer, algorithm=algorithm,
               status=status, layout="nhwc", dtype="float32", threads=1, cache="warm", count=1, flops=2e9,
               time_median_s=median, n_samples=1)
    row.update(extra)
    return row


def _folder(path, rows, config="name: x\n", shard=None):
    w = ResultsWriter(path)
    w.append(rows, [sample_row(case_index=r["case_index"], case_id=r["case_id"], sample=0, time_s=1.0) for r in rows])
    w.write_config(config)
    w.write_env({"shard": shard, "seed": 0})
    w.close()
    return path


def test_writer_round_trip(tmp_path):
    folder = _folder(tmp_path / "r", [_row(0), _row(1, algorithm="b", status="skipped", reason="no", median=math.nan)])
    res = read_results(folder)
    assert list(res.summary.columns) == SUMMARY_COLUMNS
    assert list(res.samples.columns) == SAMPLE_COLUMNS
    assert res.summary["status"].tolist() == ["ok", "skipped"]
    assert res.summary["reason"].tolist() == ["", "no"]
    assert math.isnan(res.summary["time_median_s"][1])
    assert res.env["schema_version"] == SCHEMA_VERSION
    assert res.config == {"name": "x"}


def test_writer_refuses_a_non_empty_folder_but_takes_an_empty_one(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    with pytest.raises(ResultsError, match="already exists and is not empty"):
        ResultsWriter(tmp_path / "full")
    (tmp_path / "empty").mkdir()
    ResultsWriter(tmp_path / "empty").close()
    (tmp_path / "file").write_text("")
    with pytest.raises(ResultsError, match="not a folder"):
        ResultsWriter(tmp_path / "file")


def test_rows_are_on_disk_as_soon_as_they_are_appended(tmp_path):
    w = ResultsWriter(tmp_path / "r")
    w.append([_row(0)])
    assert len(pd.read_csv(tmp_path / "r" / "summary.csv")) == 1  # before close()
    w.close()


def test_reading_something_that_is_not_a_results_folder(tmp_path):
    with pytest.raises(ResultsError, match="no such results folder"):
        read_results(tmp_path / "nope")
    with pytest.raises(ResultsError, match="not a convbench results folder"):
        read_results(tmp_path)


def test_reading_a_newer_schema_is_refused(tmp_path):
    folder = _folder(tmp_path / "r", [_row(0)])
    env = json.loads((folder / "env.json").read_text())
    env["schema_version"] = SCHEMA_VERSION + 1
    (folder / "env.json").write_text(json.dumps(env))
    with pytest.raises(ResultsError, match="newer than this convbench reads"):
        read_results(folder)


def test_reading_a_csv_with_missing_columns_names_them(tmp_path):
    folder = _folder(tmp_path / "r", [_row(0)])
    df = pd.read_csv(folder / "summary.csv").drop(columns=["gflops", "peak_bytes"])
    df.to_csv(folder / "summary.csv", index=False)
    with pytest.raises(ResultsError, match="lacks column\\(s\\) gflops, peak_bytes"):
        read_results(folder)


def test_merge_joins_shards_in_case_order(tmp_path):
    a = _folder(tmp_path / "a", [_row(2, "L2"), _row(0, "L0")], shard={"index": 1, "count": 2})
    b = _folder(tmp_path / "b", [_row(1, "L1")], shard={"index": 2, "count": 2})
    out = merge_results([a, b], tmp_path / "m")
    res = read_results(out)
    assert res.summary["case_index"].tolist() == [0, 1, 2]
    assert res.env["complete"] is True and len(res.env["shards"]) == 2


def test_merge_refuses_different_configs_and_overlaps(tmp_path):
    a = _folder(tmp_path / "a", [_row(0, "L0")])
    b = _folder(tmp_path / "b", [_row(1, "L1")], config="name: y\n")
    with pytest.raises(ResultsError, match="different config"):
        merge_results([a, b], tmp_path / "m1")
    c = _folder(tmp_path / "c", [_row(0, "L0")])
    with pytest.raises(ResultsError, match="appears in more than one folder"):
        merge_results([a, c], tmp_path / "m2")


def test_best_per_layer_and_network_totals():
    df = pd.DataFrame([
        _row(0, "L1", "a", 2.0, count=1), _row(1, "L1", "b", 1.0, count=1),
        _row(2, "L2", "a", 1.0, count=3), _row(3, "L2", "b", math.nan, status="failed", count=3),
    ])
    best = select_best(df)
    assert best.set_index("layer")["algorithm"].to_dict() == {"L1": "b", "L2": "a"}
    totals = network_totals(df).set_index("algorithm")
    assert totals.loc["a", "total_s"] == pytest.approx(2.0 + 3 * 1.0)
    assert bool(totals.loc["a", "complete"]) and not bool(totals.loc["b", "complete"])
    assert totals.loc["b", "layers_ok"] == 1


def test_a_row_with_an_unknown_or_missing_column_is_refused(tmp_path):
    from convbench.results import SchemaError, summary_row

    with pytest.raises(SchemaError, match="no column.*'gflop'"):
        summary_row(case_id="x", gflop=1.0)  # a typo is caught where the row is built
    w = ResultsWriter(tmp_path / "r")
    good = _row(0)
    with pytest.raises(SchemaError, match="has unknown gflop"):
        w.append([{**good, "gflop": 1.0}])
    del good["gflops"]
    with pytest.raises(SchemaError, match="lacks gflops"):
        w.append([good])
    with pytest.raises(SchemaError, match="samples.csv row lacks"):
        w.append([_row(0)], [{"case_id": "x"}])
    w.close()
    assert (tmp_path / "r" / "summary.csv").read_text().count("\n") == 1  # the header only: nothing half-written


def test_spec_columns_and_spec_of_are_inverse():
    from convbench import ConvSpec
    from convbench.results.schema import spec_columns, spec_of

    spec = ConvSpec(batch=2, in_channels=6, out_channels=4, height=9, width=7, kernel=(3, 1), stride=(2, 1),
                    padding=(1, 0, 2, 1), dilation=(1, 2), groups=2, layout="nhwc", dtype="float64")
    assert spec_of(spec_columns(spec)) == spec
