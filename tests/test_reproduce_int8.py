"""`convbench reproduce --dtype u8s8`: the paper's claims on 8-bit layers, and claim 4 (where
ONNX Runtime's int8 indirect convolution starts to pay) judged by its rule on a channel grid,
without touching the float report."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from convbench.analysis import int8_report as int8
from convbench.analysis.report import FAILS, HOLDS, MIXED, UNTESTED, evaluate, render_report
from convbench.cli import app
from convbench.config import load_config
from convbench.results import read_results, spec_columns

cli = CliRunner()
VNNI_ENV = {"cpu": {"model": "Test CPU", "flags": ["avx2", "avx512f", "avx512_vnni"]}}


def _grid_rows(speedups: dict[int, float], spread: float = 0.02) -> pd.DataFrame:
    """Summary rows of the channel grid: indirect ``speedups[C]`` times faster than im2col-numba,
    each median known within +-``spread``."""
    rows = []
    for layer in int8.crossover_layers():
        spec = layer.spec()
        c = spec.in_channels
        if c not in speedups:
            continue
        for algo, t in (("im2col-numba", 1e-3), ("indirect", 1e-3 / speedups[c])):
            rows.append({**spec_columns(spec), "layer": layer.name, "layer_class": layer.layer_class,
                         "network": layer.network, "count": 1, "threads": 1, "cache": "warm", "algorithm": algo,
                         "status": "ok", "case_id": f"{layer.name}|{algo}", "time_median_s": t,
                         "time_ci_low_s": t * (1 - spread), "time_ci_high_s": t * (1 + spread),
                         "workspace_bytes": float(c * (9 if algo == "im2col-numba" else 1))})
    return pd.DataFrame(rows)


def _claim4(speedups: dict[int, float], env=VNNI_ENV):
    return int8.claim_crossover(_grid_rows(speedups), None, env)


@pytest.mark.parametrize("speedups, verdict, crossover", [
    # slower below 32, faster from 32: the published finding
    ({4: 0.7, 8: 0.8, 16: 0.9, 32: 1.1, 64: 1.3, 128: 1.4}, HOLDS, 32),
    # a tie at 16 then never slower: the crossover is 16, within a factor 2 of 32
    ({4: 0.7, 8: 0.8, 16: 1.0, 32: 1.1, 64: 1.3, 128: 1.4}, HOLDS, 16),
    # indirect never loses: no crossover
    ({4: 1.5, 8: 1.4, 16: 1.3, 32: 1.3, 64: 1.2, 128: 1.2}, FAILS, 4),
    # indirect loses everywhere: no crossover on the grid
    ({4: 0.5, 8: 0.6, 16: 0.7, 32: 0.8, 64: 0.85, 128: 0.9}, FAILS, None),
    # a crossover, but at 128, not about 32
    ({4: 0.5, 8: 0.6, 16: 0.7, 32: 0.8, 64: 0.9, 128: 1.1}, MIXED, 128),
    # slower again at 64 after a win at 32: the crossover is the last change
    ({4: 0.7, 8: 0.8, 16: 0.9, 32: 1.1, 64: 0.9, 128: 1.2}, MIXED, 128),
])
def test_claim_4_follows_its_rule(speedups, verdict, crossover):
    f = _claim4(speedups)
    assert (f.claim, f.reference, f.verdict) == (4, "im2col-numba", verdict), f.headline
    assert f.extra["crossover"] == crossover
    assert list(f.table["C"]) == sorted(speedups)
    assert "avx512_vnni" in f.headline


def test_claim_4_interpolates_where_the_speedup_crosses_one():
    f = _claim4({4: 0.5, 8: 0.5, 16: 0.8, 32: 1.25, 64: 1.3, 128: 1.3})
    assert 16 < f.extra["crossing"] < 32 and "crosses 1 near C=" in f.headline


def test_claim_4_says_when_the_cpu_lacks_dot_products_or_is_unknown():
    speedups = {4: 0.7, 16: 0.9, 64: 1.2}
    assert "none (the claim is about CPUs that have them)" in _claim4(speedups, {"cpu": {"flags": ["avx2"]}}).headline
    assert "not known" in _claim4(speedups, None).headline
    assert int8.dot_product({"cpu": {"flags": ["asimddp"]}}) == "asimddp"


def test_claim_4_is_untested_without_both_algorithms():
    rows = _grid_rows({4: 1.0, 16: 1.0})
    f = int8.claim_crossover(rows[rows["algorithm"] == "indirect"], None, VNNI_ENV)
    assert f.verdict == UNTESTED


def test_claims_1_to_3_leave_the_grid_out_and_claim_4_appears_only_with_it():
    rows = _grid_rows({4: 0.7, 8: 0.8, 16: 0.9, 32: 1.1, 64: 1.3, 128: 1.4})
    findings = evaluate(rows, None, VNNI_ENV)
    assert [f.claim for f in findings if f.verdict != UNTESTED] == [4]
    assert all(f.verdict == UNTESTED for f in findings if f.claim in (1, 2, 3))
    float_like = rows.assign(network="grid")  # the same rows outside the grid: claims 1-3 see them
    found = {(f.claim, f.reference): f for f in evaluate(float_like, None)}
    assert 4 not in {c for c, _ in found} and found[1, "im2col-numba"].verdict != UNTESTED


def test_the_8bit_sweep_is_paper_yaml_in_u8s8_plus_the_channel_grid():
    paper = load_config("paper")
    config = int8.int8_config(paper)
    assert config.name == "paper-u8s8" and config.baseline == "im2col-numba"
    assert [l.name for l in config.layers[:len(paper.layers)]] == [l.name for l in paper.layers]
    assert all(l.dtypes == ("u8s8",) for l in config.layers)
    grid = config.layers[len(paper.layers):]
    assert [l.spec().in_channels for l in grid] == list(int8.CROSSOVER_CHANNELS)
    assert {(l.spec().kernel, l.spec().out_channels, l.network) for l in grid} == {
        ((3, 3), int8.CROSSOVER_OUT, int8.CROSSOVER_NETWORK)}
    assert len({l.name for l in config.layers}) == len(config.layers)
    assert [l.spec().in_channels for l in int8.int8_config(paper, quick=True).layers[len(paper.layers):]] == \
        list(int8.QUICK_CROSSOVER_CHANNELS)
    assert paper.baseline == "im2col" and paper.layers[0].dtypes == ("float32",)  # the float config is untouched


@pytest.mark.parametrize("args, words", [
    (["--dtype", "int4"], "must be float32 or u8s8"),
    (["--from", "somewhere", "--dtype", "u8s8"], "does not go with --from"),
])
def test_reproduce_refuses_a_bad_dtype(args, words):
    result = cli.invoke(app, ["reproduce", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and words in result.output, result.output


def test_reproduce_quick_in_u8s8_end_to_end(tmp_path):
    out = tmp_path / "paper-u8s8-quick"
    result = cli.invoke(app, ["reproduce", "--quick", "--dtype", "u8s8", "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    res = read_results(out)
    s = res.summary
    assert set(s["dtype"]) == {"u8s8"} and set(s["algorithm"]) == {"im2col", "im2col-numba", "indirect"}
    grid = s[s["network"] == int8.CROSSOVER_NETWORK]
    assert sorted(set(grid["in_channels"])) == list(int8.QUICK_CROSSOVER_CHANNELS)
    ran = s[s["algorithm"] != "im2col"]
    assert (ran["status"] == "ok").all(), ran[ran["status"] != "ok"][["layer", "algorithm", "reason"]]
    assert (s.loc[s["algorithm"] == "im2col", "status"] == "skipped").all()  # no BLAS has an 8-bit GEMM
    report = (out / "report.md").read_text()
    assert "in 8-bit (u8s8)" in report and "## Claim 4 (8-bit)" in report and "no 8-bit GEMM" in report
    assert "claim 4 vs im2col-numba:" in result.output
    assert "--dtype u8s8" in " ".join(res.env.get("argv") or [])
    # --from judges the folder as it is: the same verdicts again
    again = cli.invoke(app, ["reproduce", "--from", str(out)], env={"COLUMNS": "200"})
    assert again.exit_code == 0 and "claim 4 vs im2col-numba:" in again.output, again.output


def test_float_report_has_no_8bit_wording():
    from pathlib import Path

    run = read_results(Path(__file__).parent / "data" / "synthetic_run")
    text = render_report(run)
    assert "8-bit" not in text and "Claim 4" not in text and "machine BLAS (im2col + numpy matmul)" in text
