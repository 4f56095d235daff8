"""Memory columns: measured where they can be (tracemalloc, the resident set),
"not measured" with a reason where they cannot, and never a 0 that means "unknown"."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import convbench
from convbench.config import parse_config
from convbench.plots.aggregate import memory_columns
from convbench.plots.cost import figure_memory
from convbench.registry import unregister
from convbench.results import read_results
from convbench.results.schema import ADDED_IN_4, SCHEMA_VERSION, SUMMARY_COLUMNS, added_since
from convbench.sweep import footprint
from convbench.sweep.footprint import measure_memory, reset_rss_peak
from convbench.sweep.plan import describe_layers, plan as make_plan
from convbench.testing import check_workspace_is_nonnegative_int
from convbench.timing import TimingSettings
from extras import needs_extra

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20
SPEC = convbench.ConvSpec(batch=1, in_channels=2, out_channels=2, height=4, width=4, kernel=1)
FAST = TimingSettings(min_samples=3, min_time_s=0.0, max_time_s=0.3, target_ci=None, min_sample_time_s=0.0)
needs_linux = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="the RSS high-water mark is read from /proc (Linux only)")


def _ref_call(spec, weight):
    return lambda x: convbench.reference(spec, x, weight).astype(spec.dtype)


class Allocates(convbench.Algorithm):
    """Right answers; every call allocates and touches 64 MiB with numpy, freed before it returns."""

    name = "t-mem-allocates"
    scratch = 64 * MiB

    def workspace_bytes(self, spec):
        return self.scratch

    def prepare(self, spec, weight):
        ref = _ref_call(spec, weight)

        def call(x):
            scratch = np.ones(self.scratch // 8)  # every page written
            del scratch
            return ref(x)
        return call


class PeerLike(Allocates):
    """As a peer: its workspace unknown (the default), its memory left to the resident set."""

    name = "t-mem-peer"
    peer = True

    def workspace_bytes(self, spec):
        return super(Allocates, self).workspace_bytes(spec)  # the base class's default


class NeedsNone(convbench.Algorithm):
    name = "t-mem-none"

    def workspace_bytes(self, spec):
        return 0

    def prepare(self, spec, weight):
        return _ref_call(spec, weight)


@pytest.fixture
def registered():
    for cls in (Allocates, PeerLike, NeedsNone):
        unregister(cls.name)
        convbench.register(cls)
    yield
    for cls in (Allocates, PeerLike, NeedsNone):
        unregister(cls.name)


def _measure(algo):
    x, w = SPEC.random_inputs(0)
    algo.prepare(SPEC, w)(x)  # the warm-up call, as in a sweep
    return measure_memory(algo, SPEC, w, x)


def _rss_works():
    why = reset_rss_peak()
    if why:
        pytest.skip(f"this machine cannot reset the RSS high-water mark: {why}")


# -- measuring -------------------------------------------------------------------------------------


def test_the_default_workspace_is_unknown_and_the_conformance_check_allows_it():
    assert convbench.Algorithm.workspace_bytes(NeedsNone(), SPEC) is None
    assert PeerLike().workspace_bytes(SPEC) is None and NeedsNone().workspace_bytes(SPEC) == 0
    check_workspace_is_nonnegative_int(PeerLike(), SPEC)
    assert footprint.traces_memory(NeedsNone()) and not footprint.traces_memory(PeerLike())


@needs_linux
def test_rss_peak_sees_what_the_call_touched():
    _rss_works()
    m = _measure(Allocates())
    assert m["memory_method"] == "tracemalloc"
    assert m["rss_peak_bytes"] >= 60 * MiB
    assert m["peak_bytes"] >= 64 * MiB  # tracemalloc sees numpy too


@needs_linux
def test_heap_the_allocator_kept_is_counted_again():
    """The sweep stops glibc from trimming: a call's temporaries stay resident after
    the warm-up; the measurement hands them back first, so they count."""
    from convbench.machine.malloc_policy import keep_freed_memory

    _rss_works()
    keep_freed_memory()
    algo = Allocates()
    algo.scratch = 16 * MiB  # below the 32 MiB mmap threshold: from the heap, kept after free
    assert _measure(algo)["rss_peak_bytes"] >= 15 * MiB


@needs_linux
def test_a_peer_is_measured_by_its_resident_set_never_a_small_tracemalloc_number():
    _rss_works()
    m = _measure(PeerLike())
    assert m["memory_method"] == "rss"
    assert m["peak_bytes"] == m["rss_peak_bytes"] >= 60 * MiB
    assert m["measured_workspace_bytes"] >= 60 * MiB - SPEC.output_bytes


@pytest.mark.parametrize("how", ["not linux", "refused"])
def test_without_an_rss_reset_a_peer_is_not_measured_and_a_builtin_keeps_tracemalloc(monkeypatch, tmp_path, how):
    if how == "not linux":
        monkeypatch.setattr(footprint, "sys", SimpleNamespace(platform="darwin"))
    else:
        monkeypatch.setattr(footprint, "CLEAR_REFS", str(tmp_path))  # a folder: the write fails
    why = reset_rss_peak()
    assert why and ("Linux only" in why if how == "not linux" else "cannot reset" in why)
    peer = _measure(PeerLike())
    assert peer["memory_method"] == f"not measured: tracemalloc cannot see this algorithm's allocations, and {why}"
    assert peer["peak_bytes"] is None and peer["measured_workspace_bytes"] is None
    assert peer["prepare_bytes"] is None and peer["rss_peak_bytes"] is None
    own = _measure(Allocates())
    assert own["memory_method"] == f"tracemalloc; rss not measured: {why}"
    assert own["peak_bytes"] >= 64 * MiB and own["rss_peak_bytes"] is None


@needs_linux
def test_a_reset_the_kernel_ignores_is_caught(monkeypatch, tmp_path):
    _rss_works()
    big = np.ones(64 * MiB // 8)  # mmap-ed (over the 32 MiB threshold): freeing it lowers the RSS, not the peak
    del big
    monkeypatch.setattr(footprint, "CLEAR_REFS", str(tmp_path / "clear_refs"))  # accepted, does nothing
    assert "ignored the reset" in reset_rss_peak()


@needs_extra("peers", "torch")
@needs_linux
def test_the_torch_peer_has_an_unknown_workspace_and_rss_memory():
    _rss_works()
    torch = convbench.get_algorithm("torch")
    spec = convbench.ConvSpec(batch=1, in_channels=8, out_channels=8, height=16, width=16, kernel=3, padding=1)
    x, w = spec.random_inputs(0)
    torch.prepare(spec, w)(x)
    m = measure_memory(torch, spec, w, x)
    assert torch.workspace_bytes(spec) is None
    assert m["memory_method"] == "rss" and m["peak_bytes"] == m["rss_peak_bytes"]


# -- results ---------------------------------------------------------------------------------------


def test_unknown_workspace_is_an_empty_cell_in_summary_csv(registered, tmp_path):
    config = parse_config("algorithms: [t-mem-none, t-mem-peer]\nbaseline: t-mem-none\nthreads: [1]\n"
                          "layers:\n  - {name: a, channels: 2, size: 4, kernel: 1}\n", "t.yaml")
    the_plan = make_plan(config)
    the_plan.timing = FAST
    out = convbench.run(the_plan, tmp_path / "r", calibration=False, isolation=False).out_dir
    with open(out / "summary.csv", newline="") as f:
        raw = {r["algorithm"]: r for r in csv.DictReader(f)}
    assert raw["t-mem-peer"]["workspace_bytes"] == "" and raw["t-mem-none"]["workspace_bytes"] == "0"
    summary = read_results(out, samples=False).summary.set_index("algorithm")
    assert summary.loc["t-mem-peer", "status"] == "ok" and np.isnan(summary.loc["t-mem-peer", "workspace_bytes"])
    assert summary.loc["t-mem-none", "memory_method"].startswith("tracemalloc")
    peer = summary.loc["t-mem-peer"]
    if reset_rss_peak() is None:
        assert peer["memory_method"] == "rss" and peer["peak_bytes"] >= 60 * MiB
    else:
        assert peer["memory_method"].startswith("not measured") and np.isnan(peer["peak_bytes"])


def test_layers_say_unknown_not_zero(registered):
    config = parse_config("algorithms: [t-mem-none, t-mem-peer]\nbaseline: t-mem-none\n"
                          "layers:\n  - {name: a, channels: 2, size: 4, kernel: 1}\n", "t.yaml")
    (row,) = describe_layers(make_plan(config))
    assert row["workspace_bytes"] == {"t-mem-none": 0, "t-mem-peer": "unknown"}


def test_schema_4_adds_the_memory_columns():
    assert SCHEMA_VERSION >= 4
    assert {"rss_peak_bytes", "memory_method"} <= set(ADDED_IN_4["summary.csv"]) <= set(SUMMARY_COLUMNS)
    assert set(ADDED_IN_4["summary.csv"]) <= set(added_since("summary.csv", 3))
    assert not set(ADDED_IN_4["summary.csv"]) & set(added_since("summary.csv", 4))
    assert {"implementation", "rss_peak_bytes"} <= set(added_since("summary.csv", 1))


def test_an_old_folder_without_the_memory_columns_reads(tmp_path):
    old = tmp_path / "old"
    shutil.copytree(ROOT / "tests" / "data" / "synthetic_run", old)  # schema 1
    summary = read_results(old).summary
    assert summary["rss_peak_bytes"].isna().all() and (summary["memory_method"] == "").all()
    # a schema-3 folder: every column but the two
    env = json.loads((old / "env.json").read_text())
    (old / "env.json").write_text(json.dumps({**env, "schema_version": 3}))
    df = summary.drop(columns=["rss_peak_bytes", "memory_method"])
    df.to_csv(old / "summary.csv", index=False)
    again = read_results(old, samples=False).summary
    assert again["rss_peak_bytes"].isna().all() and len(again) == len(summary)
    paper = ROOT / "results" / "paper"
    if (paper / "summary.csv").is_file():
        assert "memory_method" in read_results(paper, samples=False).summary.columns


# -- the figure ------------------------------------------------------------------------------------


def _summary(rows):
    base = {"layer": "a", "layer_class": "conv", "layout": "nhwc", "dtype": "float32", "threads": 1,
            "status": "ok", "peak_bytes": np.nan, "measured_workspace_bytes": np.nan}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_an_old_peer_row_is_not_measured_not_zero():
    old = _summary([{"algorithm": "torch", "workspace_bytes": 0, "measured_workspace_bytes": 0.0},
                    {"algorithm": "naive", "workspace_bytes": 0, "measured_workspace_bytes": 900.0}])
    m = memory_columns(old).set_index("algorithm")
    assert np.isnan(m.loc["torch", "ws"]) and np.isnan(m.loc["torch", "measured"])
    assert m.loc["torch", "method"] == "not measured"
    assert m.loc["naive", "ws"] == 0 and m.loc["naive", "measured"] == 900 and m.loc["naive", "method"] == "tracemalloc"


def _legend(fig):
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_the_memory_figure_draws_unknown_and_not_measured_apart_from_zero():
    df = _summary([
        {"algorithm": "naive", "workspace_bytes": 0, "measured_workspace_bytes": 900, "memory_method": "tracemalloc"},
        {"algorithm": "im2col", "workspace_bytes": 4096, "measured_workspace_bytes": 5000,
         "memory_method": "tracemalloc"},
        {"algorithm": "torch", "workspace_bytes": np.nan, "measured_workspace_bytes": 70000, "memory_method": "rss"},
        {"algorithm": "onnxruntime", "workspace_bytes": np.nan,
         "memory_method": "not measured: tracemalloc cannot see this algorithm's allocations, and no reset"},
    ])
    labels = _legend(figure_memory(df))
    assert {"analytic 0 bytes (none needed)", "analytic unknown", "not measured", "measured (tracemalloc)",
            "measured (resident set, RSS)"} <= set(labels)
    only_ours = _legend(figure_memory(df[df["algorithm"].isin(["naive", "im2col"])]))
    assert "analytic unknown" not in only_ours and "not measured" not in only_ours
