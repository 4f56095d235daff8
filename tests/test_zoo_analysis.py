"""The zoo's analysis on a tiny fake results folder: credits, per-network totals that add up
from the rows, the gain of choosing per layer, per-class verdicts, the report. No onnx needed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from convbench.analysis.select import network_totals
from convbench.analysis.zoo import credited, network_table, networks_of, selection_gains
from convbench.analysis.zoo_classes import class_verdicts, pair_speedups, verdict
from convbench.analysis.zoo_report import html_section, write_zoo
from convbench.config import dump_config
from convbench.results import ResultsWriter, read_results, sample_row, summary_row
from convbench.spec import ConvSpec
from convbench.timing import summarize
from convbench.zoo import MANIFEST_FILE, format_credits, parse_credits, zoo_class

#: name, class, credits, shape
LAYERS = [
    ("net1_a", "3x3/s1", {"net1": 1, "net2": 2}, dict(in_channels=8, out_channels=8, height=8, width=8, kernel=3, padding=1)),
    ("net1_b", "1x1/s1", {"net1": 3}, dict(in_channels=16, out_channels=16, height=8, width=8, kernel=1)),
    ("net2_c", "3x3/s1", {"net2": 1}, dict(in_channels=16, out_channels=16, height=8, width=8, kernel=3, padding=1)),
]
#: median ms per (algorithm, layer); None: skipped
MS = {"im2col": (1.0, 2.0, 3.0), "indirect": (0.5, 2.5, 2.0), "winograd": (0.4, None, 1.0),
      "torch": (0.8, 1.0, 2.5), "onednn": (0.9, 1.5, 1.5)}
PEERS = ["torch", "onednn"]


def make_fake_zoo(folder: Path, manifest: dict | None = None, noise: float = 0.01) -> Path:
    """A schema-correct zoo results folder with the times of :data:`MS` (12 samples a case)."""
    rng = np.random.default_rng(0)
    rows, samples, index = [], [], 0
    with ResultsWriter(folder) as writer:
        for li, (name, cls, credits, shape) in enumerate(LAYERS):
            spec = ConvSpec(batch=1, layout="nhwc", dtype="float32", **shape)
            for algo, times in MS.items():
                case_id = f"{name}|{algo}|nhwc|float32|t1"
                row = summary_row(
                    case_index=index, case_id=case_id, layer=name, layer_class=cls, network=format_credits(credits),
                    description=spec.describe(), count=sum(credits.values()), algorithm=algo, status="ok", reason="",
                    layout="nhwc", dtype="float32", threads=1, batch=1, in_channels=spec.in_channels,
                    out_channels=spec.out_channels, height=spec.height, width=spec.width, kernel_h=spec.kernel_h,
                    kernel_w=spec.kernel_w, stride_h=1, stride_w=1, pad_top=spec.pad_top, pad_bottom=spec.pad_bottom,
                    pad_left=spec.pad_left, pad_right=spec.pad_right, dilation_h=1, dilation_w=1, groups=1,
                    output_height=spec.output_height, output_width=spec.output_width, flops=spec.flops,
                    baseline="im2col", error_tolerance=1e-4, max_rel_err=1e-7, workspace_bytes=1024, seed=0)
                index += 1
                if times[li] is None:
                    row.update(status="skipped", reason="winograd needs a 3x3 kernel, stride 1")
                    rows.append(row)
                    continue
                t = times[li] * 1e-3 * np.exp(rng.normal(0.0, noise, 12))
                row.update(gflops=spec.flops / (times[li] * 1e-3) / 1e9, **summarize(t))
                rows.append(row)
                samples += [sample_row(case_index=row["case_index"], case_id=case_id, layer=name, algorithm=algo,
                                       layout="nhwc", dtype="float32", threads=1, round=i, sample=i, loops=1,
                                       time_s=float(x)) for i, x in enumerate(t)]
        writer.append(rows, samples)
        writer.write_env({"cpu": {"model": "Fake CPU"}, "peers": PEERS, "convbench": {"version": "0"},
                          "start_time": "2026-01-01T00:00:00", "end_time": "2026-01-01T00:01:00"})
        writer.write_config(dump_config({"name": "zoo", "algorithms": list(MS), "layers": [
            {"name": n, "layer_class": c, "network": format_credits(k), **s} for n, c, k, s in LAYERS]}))
    if manifest is not None:
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return read_results(make_fake_zoo(tmp_path_factory.mktemp("zoo") / "run"))


def _total(table, net, choice):
    row = table[(table["network"] == net) & (table["choice"] == choice)]
    assert len(row) == 1, (net, choice)
    return row.iloc[0]


def test_credits_round_trip_and_other_networks_have_none():
    credits = {"densenet121": 1, "resnet50": 2}
    assert parse_credits(format_credits(credits)) == credits
    assert parse_credits("ResNet-50") == {} and parse_credits(None) == {}
    with pytest.raises(ValueError, match="NETWORK=COUNT"):
        parse_credits("zoo:resnet50")


def test_the_zoo_class_adds_the_stride():
    assert zoo_class({"layer_class": "3x3", "stride": 2}) == "3x3/s2"
    assert zoo_class({"layer_class": "dw3x3"}) == "dw3x3/s1"
    assert zoo_class({"layer_class": "7x1", "stride": [2, 1]}) == "7x1/s2x1"


def test_a_network_gets_its_own_count_of_a_shared_layer(fake):
    assert networks_of(fake.summary) == ["net1", "net2"]
    net2 = credited(fake.summary, "net2")
    assert set(net2["layer"]) == {"net1_a", "net2_c"}
    assert set(net2.loc[net2["layer"] == "net1_a", "count"]) == {2}  # the row's count is 3: both networks


def test_network_totals_are_the_credited_sums_of_the_rows(fake):
    t = network_table(fake.summary)
    assert _total(t, "net1", "im2col")["total_s"] == pytest.approx(1.0e-3 + 3 * 2.0e-3, rel=0.02)
    assert _total(t, "net2", "im2col")["total_s"] == pytest.approx(2 * 1.0e-3 + 3.0e-3, rel=0.02)
    assert _total(t, "net1", "best per layer")["total_s"] == pytest.approx(0.4e-3 + 3 * 1.0e-3, rel=0.02)
    # winograd skips net1's 1x1: partial there (never ranked), a whole network time on net2
    assert not _total(t, "net1", "winograd")["complete"] and math.isnan(_total(t, "net1", "winograd")["vs_best"])
    assert _total(t, "net2", "winograd")["complete"]
    # the networks' totals add up to the whole sweep's, where each row counts every credit
    whole = network_totals(fake.summary).set_index("algorithm")["total_s"]
    for algo in ("im2col", "indirect", "torch", "onednn"):
        parts = _total(t, "net1", algo)["total_s"] + _total(t, "net2", algo)["total_s"]
        assert parts == pytest.approx(whole[algo], rel=1e-12)


def test_a_layer_the_run_never_measured_makes_every_total_partial(tmp_path):
    manifest = {"networks": {"net1": {"layers": ["net1_a", "net1_b"]},
                             "net2": {"layers": ["net1_a", "net2_c", "net2_missing"]}}}
    res = read_results(make_fake_zoo(tmp_path / "run", manifest))
    from convbench.analysis.zoo_report import read_manifest

    t = network_table(res.summary, read_manifest(tmp_path / "run"))
    net2 = t[t["network"] == "net2"]
    assert not net2["complete"].any() and set(net2["layers"]) == {3}
    assert t[t["network"] == "net1"]["complete"].any()
    gains = selection_gains(res.summary, read_manifest(tmp_path / "run"), res.env, n_boot=200)
    own = gains[(gains["network"] == "net2") & (gains["side"] == "convbench")].iloc[0]
    assert math.isnan(own["gain"]) and "partial" in own["note"]


def test_the_gain_of_choosing_per_layer_against_the_best_single_algorithm(fake):
    g = selection_gains(fake.summary, env=fake.env, n_boot=400).set_index(["network", "side"])
    own = g.loc[("net1", "convbench")]
    assert own["single"] == "im2col"  # indirect's 8 ms > im2col's 7; winograd is partial on net1
    assert own["oracle_s"] == pytest.approx(0.4e-3 + 3 * 2.0e-3, rel=0.02)
    assert own["gain"] == pytest.approx(7.0 / 6.4, rel=0.02)
    assert own["ci_low"] > 1.0 and own["ci_low"] <= own["gain"] <= own["ci_high"]
    # where one algorithm is best on every layer, choosing gains nothing, and the interval holds 1
    same = g.loc[("net2", "convbench")]
    assert same["single"] == "winograd" and same["gain"] == pytest.approx(1.0)
    assert same["ci_low"] <= 1.0 <= same["ci_high"]
    peers = g.loc[("net2", "peers")]
    assert peers["single"] == "onednn" and peers["gain"] == pytest.approx(3.3 / 3.1, rel=0.02)
    versus = g.loc[("net1", "convbench vs peers")]
    assert versus["gain"] == pytest.approx(3.8 / 6.4, rel=0.02) and versus["ci_high"] < 1.0


def test_class_verdicts_count_faster_and_slower_layers(fake):
    sp = pair_speedups(fake.summary, fake.samples)
    indirect = sp[sp["pair"] == "indirect vs im2col"].set_index("layer")
    assert indirect.loc["net1_a", "result"] == "faster" and indirect.loc["net1_b", "result"] == "slower"
    cv = class_verdicts(sp).set_index(["pair", "layer_class"])
    assert cv.loc[("indirect vs im2col", "3x3/s1"), "verdict"] == "wins"
    assert cv.loc[("indirect vs im2col", "1x1/s1"), "verdict"] == "loses"
    assert cv.loc[("indirect vs im2col", "all"), "layers"] == 3
    assert "winograd vs im2col" in set(sp["pair"]) and "fft vs im2col" not in set(sp["pair"])  # fft never ran


def test_the_class_rule_on_counts():
    assert verdict(3, 2, 0) == "wins" and verdict(3, 2, 1) == "mixed" and verdict(3, 0, 3) == "loses"
    assert verdict(1, 0, 0) == "mixed"


def test_the_report_names_every_network_gain_and_class_and_the_page_repeats_it(tmp_path):
    folder = make_fake_zoo(tmp_path / "run")
    outcome = write_zoo(folder, paper=False, draw=False)
    text = outcome.report.read_text()
    assert "## Verdicts: what choosing per layer gains" in text and "| net1 | im2col 7" in text
    assert "1.09x [" in text  # net1's gain with its interval
    assert "**wins**: 2/2 faster, 0 slower" in text  # indirect on the 3x3/s1 class, with its count
    for name in ("zoo_networks.csv", "zoo_gains.csv", "zoo_layers.csv", "zoo_classes.csv", "zoo_trends.csv"):
        assert (folder / name).is_file()
    page = html_section(folder)
    assert "what choosing per layer gains" in page and "<table" in page


def test_a_folder_that_is_not_a_zoo_run_is_refused(tmp_path):
    import sys

    from convbench.results import ResultsError

    sys.path.insert(0, str(Path(__file__).parent / "data"))
    import make_synthetic

    make_synthetic.make_results(tmp_path / "plain", threads=(1,), n_samples=4)
    with pytest.raises(ResultsError, match="not a zoo run"):
        write_zoo(tmp_path / "plain", paper=False, draw=False)
    assert html_section(tmp_path / "plain") == ""
