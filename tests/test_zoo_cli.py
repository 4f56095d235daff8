"""`convbench zoo`: the config it writes, its refusals, a one-layer run through `convbench run`, and
`--from` on a finished run."""

from __future__ import annotations

import json

import pytest
from extras import needs_extra
from typer.testing import CliRunner

from convbench.cli import app
from convbench.config import load_config
from convbench.zoo import parse_credits

cli = CliRunner()


def _invoke(*args: str):
    return cli.invoke(app, list(args), env={"COLUMNS": "200"})


@needs_extra("peers", "onnx")
def test_write_config_gives_a_config_run_can_read(tmp_path):
    path = tmp_path / "zoo.yaml"
    result = _invoke("zoo", "--networks", "alexnet,zfnet512", "--layouts", "nchw,nhwc", "--write-config", str(path))
    assert result.exit_code == 0, result.output
    config = load_config(path)
    assert len(config.layers) == 9 and config.layers[0].layouts == ("nchw", "nhwc")
    assert "naive" in config.algorithm_names() and "scipy-correlate" not in config.algorithm_names()
    assert {k for layer in config.layers for k in parse_credits(layer.network)} == {"alexnet", "zfnet512"}
    again = _invoke("zoo", "--networks", "alexnet", "--write-config", str(path))
    assert again.exit_code == 2 and "exists" in again.output


@needs_extra("peers", "onnx")
def test_quick_leaves_out_naive_and_keeps_the_paper_pairs(tmp_path):
    path = tmp_path / "zoo.yaml"
    assert _invoke("zoo", "--networks", "squeezenet", "--quick", "--write-config", str(path)).exit_code == 0
    names = load_config(path).algorithm_names()
    assert {"im2col", "im2col-numba", "indirect", "winograd", "fft"} <= set(names)
    assert "naive" not in names and "winograd-f6" not in names


@pytest.mark.parametrize("args, message", [
    (["--networks", "lenet"], "unknown network 'lenet'"),
    (["--layouts", "nwhc"], "--layouts takes nchw, nhwc"),
    (["--quick", "--from", "x"], "--from only redoes the report"),
    (["--resume", "x", "--networks", "vgg19"], "--resume finishes the run with its own config"),
])
def test_bad_options_are_refused_with_their_name(args, message):
    result = _invoke("zoo", *args)
    assert result.exit_code == 2 and message in result.output, result.output


@needs_extra("peers", "onnx")
def test_run_options_go_to_run_which_checks_them(tmp_path):
    result = _invoke("zoo", "--networks", "alexnet", "-l", "nope", "-o", str(tmp_path / "z"))
    assert result.exit_code == 2 and "no layer matches 'nope'" in result.output, result.output
    result = _invoke("zoo", "--networks", "alexnet", "--bogus", "-o", str(tmp_path / "z"))
    assert result.exit_code == 2 and "No such option" in result.output and "--bogus" in result.output, result.output


def test_from_redoes_the_report_of_a_finished_run(tmp_path, monkeypatch):
    from test_zoo_analysis import make_fake_zoo

    folder = make_fake_zoo(tmp_path / "run")
    monkeypatch.chdir(tmp_path)  # no results/paper here: the claims stand alone
    result = _invoke("zoo", "--from", str(folder))
    assert result.exit_code == 0, result.output
    assert "net1" in result.output and "1.09x [" in result.output
    assert "indirect vs im2col (nhwc, float32, 1, warm): faster on 2/3 layers" in result.output
    assert (folder / "report.md").is_file() and (folder / "plots" / "zoo_networks.png").is_file()
    assert (folder / "report.html").is_file() and "The zoo" in (folder / "report.html").read_text()


@needs_extra("peers", "onnx")
def test_a_one_layer_zoo_runs_through_run_and_ends_with_its_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "zoo"
    result = _invoke("zoo", "--networks", "squeezenet", "--quick", "-a", "im2col,indirect", "-l", "squeezenet_n3",
                     "--no-isolation", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "2 cases: 2 ok" in result.output  # `convbench run`'s own lines
    assert "per network" in result.output and "SqueezeNet" in result.output
    assert "partial: the oracle covers 1 of 18 layers" in result.output  # one layer of 18 measured
    manifest = json.loads((out / "zoo.json").read_text())
    assert len(manifest["networks"]["squeezenet"]["layers"]) == 18
    assert (out / "report.md").is_file() and (out / "zoo_gains.csv").is_file()
