"""convbench.results.tables and `convbench convert`: Parquet beside the CSVs, read transparently."""

import os
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from convbench.results import tables
from convbench.results.convert import convert
from convbench.cli import app
from convbench.results import ResultsError, read_results
from extras import have, needs_extra

DATA = Path(__file__).parent / "data" / "synthetic_run"
cli = CliRunner()


@pytest.fixture
def folder(tmp_path):
    out = tmp_path / "run"
    shutil.copytree(DATA, out, ignore=shutil.ignore_patterns("plots", "*.parquet"))
    return out


@needs_extra("parquet")
def test_convert_to_parquet_reads_back_the_same_tables(folder):
    before = read_results(folder)
    result = cli.invoke(app, ["convert", str(folder), "--to", "parquet"])
    assert result.exit_code == 0, result.output
    assert (folder / "samples.parquet").is_file() and (folder / "samples.csv").is_file()  # the CSV stays
    assert tables.source_of(folder, "samples").suffix == ".parquet"
    after = read_results(folder)
    pd.testing.assert_frame_equal(before.summary, after.summary, check_dtype=False)
    pd.testing.assert_frame_equal(before.samples, after.samples.astype({"case_id": object, "layer": object,
                                                                        "algorithm": object, "layout": object,
                                                                        "dtype": object}), check_dtype=False)


@pytest.mark.parametrize("fmt", ["csv", pytest.param("parquet", marks=needs_extra("parquet"))])
def test_analysis_reads_only_the_columns_it_needs(folder, fmt):
    if fmt == "parquet":
        convert(folder, "parquet")
    res = read_results(folder, samples=["time_s"])
    assert list(res.samples.columns) == ["case_id", "time_s"]
    assert isinstance(res.samples["case_id"].dtype, pd.CategoricalDtype)
    assert len(res.samples) == len(read_results(folder).samples)
    assert len(read_results(folder, samples=False).samples) == 0


@needs_extra("parquet")
def test_a_parquet_file_older_than_its_csv_is_ignored_with_a_warning(folder):
    convert(folder, "parquet")
    csv = folder / "samples.csv"
    later = (folder / "samples.parquet").stat().st_mtime_ns + 10**9
    os.utime(csv, ns=(later, later))
    with pytest.warns(UserWarning, match="older than samples.csv"):
        assert tables.source_of(folder, "samples") == csv


@needs_extra("parquet")
def test_convert_back_to_csv(folder):
    convert(folder, "parquet")
    (folder / "samples.csv").unlink()
    assert tables.source_of(folder, "samples").suffix == ".parquet"
    convert(folder, "csv")
    assert len(pd.read_csv(folder / "samples.csv")) == len(read_results(folder).samples)


def test_without_pyarrow_the_extra_is_named_and_csv_still_works(folder, monkeypatch):
    if have("parquet"):  # a parquet file beside the CSV must not matter either
        convert(folder, "parquet")
    else:  # as convert would leave it, without needing pyarrow to write it
        (folder / "samples.parquet").write_bytes(b"PAR1")
    monkeypatch.setattr(tables, "have_pyarrow", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_results(folder).samples) > 0  # the CSV is there: read it
    bad = cli.invoke(app, ["convert", str(folder), "--to", "parquet"])
    assert bad.exit_code == 2 and "convbench[parquet]" in bad.output and "Traceback" not in bad.output
    (folder / "samples.csv").unlink()
    with pytest.raises(ResultsError, match=r"convbench\[parquet\]"):
        read_results(folder)
    select = cli.invoke(app, ["select", str(folder)])
    assert select.exit_code == 0, select.output  # select reads no samples


def test_convert_refuses_bad_input(folder, tmp_path):
    assert cli.invoke(app, ["convert", str(tmp_path / "nope")]).exit_code == 2
    bad = cli.invoke(app, ["convert", str(folder), "--to", "xlsx"])
    assert bad.exit_code == 2 and "parquet" in bad.output
