"""The runner: one row per case whatever happens, interleaved sampling, sharding,
and `convbench run` end to end on configs/smoke.yaml."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import convbench
from convbench.cli.options import parse_shard
from convbench.sweep import measure as rn
from convbench.sweep.footprint import measure_memory
from convbench.sweep.plan import plan as make_plan
from convbench.cli import app
from convbench.config import load_config, parse_config
from convbench.registry import unregister
from convbench.results import REQUIRED_COLUMNS, STATUSES, SUMMARY_COLUMNS, read_results
from convbench.timing import TimingSettings

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
FAST = TimingSettings(min_samples=4, min_time_s=0.0, max_time_s=0.5, target_ci=None, min_sample_time_s=0.0)


def _ref_call(spec, w):
    return lambda x: convbench.reference(spec, x, w).astype(spec.dtype)


class TRef(convbench.Algorithm):
    name = "t-ref"

    def workspace_bytes(self, spec):
        return 123

    def prepare(self, spec, weight):
        return _ref_call(spec, weight)


class TWrong(convbench.Algorithm):
    name = "t-wrong"

    def prepare(self, spec, weight):
        return lambda x: np.zeros(spec.output_shape, spec.dtype) + 1


class TCallRaises(convbench.Algorithm):
    name = "t-call-raises"

    def prepare(self, spec, weight):
        def call(x):
            raise RuntimeError("boom in call")
        return call


class TPrepareRaises(convbench.Algorithm):
    name = "t-prepare-raises"

    def prepare(self, spec, weight):
        raise ValueError("cannot pack")


class TUnsupported(convbench.Algorithm):
    name = "t-unsupported"

    def supports(self, spec):
        return "only 5x5 kernels"

    def prepare(self, spec, weight):
        raise AssertionError("never prepared")


class TBadShape(convbench.Algorithm):
    name = "t-bad-shape"

    def prepare(self, spec, weight):
        return lambda x: np.zeros((1, 2, 3, 4), spec.dtype)


class TMutates(convbench.Algorithm):
    name = "t-mutates"

    def prepare(self, spec, weight):
        ref = _ref_call(spec, weight)

        def call(x):
            y = ref(x)
            x[...] = 0
            return y
        return call


class TFailsLater(convbench.Algorithm):
    """Right on the warm-up call, raises from the third call on."""

    name = "t-fails-later"

    def prepare(self, spec, weight):
        ref = _ref_call(spec, weight)
        calls = [0]

        def call(x):
            calls[0] += 1
            if calls[0] > 2:
                raise MemoryError("out of luck")
            return ref(x)
        return call


TEST_ALGOS = [TRef, TWrong, TCallRaises, TPrepareRaises, TUnsupported, TBadShape, TMutates, TFailsLater]


@pytest.fixture
def test_algorithms():
    for cls in TEST_ALGOS:
        unregister(cls.name)
        convbench.register(cls)
    yield [cls.name for cls in TEST_ALGOS]
    for cls in TEST_ALGOS:
        unregister(cls.name)


def _config(algorithms, threads="[1]", layers=None):
    layers = layers or "  - {name: a, channels: 4, size: 6, kernel: 3, padding: 1}\n"
    return parse_config(
        f"algorithms: [{', '.join(algorithms)}]\nbaseline: t-ref\nthreads: {threads}\nlayers:\n{layers}", "t.yaml"
    )


def test_every_case_is_one_row_whatever_happens(test_algorithms):
    plan = make_plan(_config(test_algorithms))
    (group,) = plan.groups
    result = rn.measure_group(group, FAST, seed=0, baseline="t-ref")
    rows = {r["algorithm"]: r for r in result.rows}
    assert list(rows) == test_algorithms
    assert rows["t-ref"]["status"] == "ok" and rows["t-ref"]["reason"] == ""
    assert rows["t-ref"]["speedup_vs_baseline"] == 1.0
    assert rows["t-ref"]["workspace_bytes"] == 123
    assert rows["t-ref"]["max_rel_err"] < 1e-6
    assert rows["t-wrong"]["status"] == "failed"
    assert "exceeds tolerance" in rows["t-wrong"]["reason"]
    assert rows["t-wrong"].get("speedup_vs_baseline") is None  # a wrong answer is never a win
    assert rows["t-call-raises"]["status"] == "error"
    assert rows["t-call-raises"]["reason"] == "the warm-up call raised RuntimeError: boom in call"
    assert rows["t-prepare-raises"]["status"] == "error"
    assert rows["t-prepare-raises"]["reason"] == "prepare() raised ValueError: cannot pack"
    assert rows["t-unsupported"] == {**rows["t-unsupported"], "status": "skipped", "reason": "only 5x5 kernels"}
    assert rows["t-bad-shape"]["status"] == "failed" and "output shape (1, 2, 3, 4)" in rows["t-bad-shape"]["reason"]
    assert rows["t-mutates"]["status"] == "failed" and "modified its input" in rows["t-mutates"]["reason"]
    assert rows["t-fails-later"]["status"] == "error"
    assert "MemoryError: out of luck" in rows["t-fails-later"]["reason"]
    for row in result.rows:
        assert row["status"] in STATUSES
        assert set(REQUIRED_COLUMNS) <= set(row) | {"gflops", "speedup_vs_baseline", "prepare_s", "compile_s",
                                                     "time_median_s", "time_iqr_s", "time_min_s", "time_ci_low_s",
                                                     "time_ci_high_s", "workspace_bytes", "peak_bytes", "max_rel_err"}


def test_samples_are_interleaved_round_by_round_and_match_n_samples(test_algorithms):
    plan = make_plan(_config(["t-ref", "t-wrong"]))
    result = rn.measure_group(plan.groups[0], FAST, seed=0, baseline="t-ref")
    samples = pd.DataFrame(result.samples)
    for row in result.rows:
        assert (samples["algorithm"] == row["algorithm"]).sum() == row["n_samples"] >= FAST.min_samples
    # every round measures each live algorithm once, before the next round starts
    assert samples["round"].is_monotonic_increasing
    per_round = samples.groupby("round")["algorithm"].apply(sorted)
    assert all(algos == ["t-ref", "t-wrong"] for algos in per_round)
    # the order rotates, so nobody always goes first
    firsts = samples.groupby("round")["algorithm"].first()
    assert set(firsts) == {"t-ref", "t-wrong"}


def test_statistics_and_rates_of_an_ok_row(test_algorithms):
    plan = make_plan(_config(["t-ref"]))
    result = rn.measure_group(plan.groups[0], FAST, seed=0, baseline="t-ref")
    (row,) = result.rows
    times = [s["time_s"] for s in result.samples]
    assert row["time_median_s"] == pytest.approx(float(np.median(times)))
    assert row["time_min_s"] == min(times)
    assert row["gflops"] == pytest.approx(row["flops"] / row["time_median_s"] / 1e9)
    assert row["numba_threads"] == 1 and row["blas_threads"] == 1 and row["fft_workers"] == 1


def test_more_threads_than_the_pool_is_a_skipped_row(test_algorithms):
    plan = make_plan(_config(["t-ref"], threads="[1, 1000]"))
    rows = [r for g in plan.groups for r in rn.measure_group(g, FAST, baseline="t-ref").rows]
    assert [r["status"] for r in rows] == ["ok", "skipped"]
    assert "threads=1000 exceeds numba's pool" in rows[1]["reason"]


def test_shards_partition_the_cases_deterministically():
    config = load_config(CONFIGS / "mobilenet.yaml")
    full = make_plan(config, algorithms=["im2col", "naive"], threads=[1, 2])
    ids = [c.case_id for c in full.cases]
    assert [c.index for c in full.cases] == list(range(len(ids)))
    parts = [make_plan(config, algorithms=["im2col", "naive"], threads=[1, 2], shard=(i, 3)) for i in (1, 2, 3)]
    seen = [c.index for p in parts for c in p.cases]
    assert sorted(seen) == list(range(len(ids)))  # disjoint and complete
    again = make_plan(config, algorithms=["im2col", "naive"], threads=[1, 2], shard=(2, 3))
    assert [c.case_id for c in again.cases] == [c.case_id for c in parts[1].cases]
    for p in parts:  # whole groups: the baseline sits beside every algorithm
        for g in p.groups:
            assert {c.algorithm for c in g.cases} == {"im2col", "naive"}


@pytest.mark.parametrize("text", ["1", "0/2", "3/2", "a/b", "1/0"])
def test_bad_shard_is_refused(text):
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(text)


@pytest.mark.parametrize("name", ["im2col", "indirect"])
def test_measured_workspace_agrees_with_analytic(name):
    spec = convbench.ConvSpec(batch=1, in_channels=16, out_channels=16, height=56, width=56,
                              kernel=3, padding=1, layout="nhwc")
    algo = convbench.get_algorithm(name)
    x, w = spec.random_inputs(0)
    algo.prepare(spec, w)(x)  # compile first: the measurement must not see the JIT
    measured = measure_memory(algo, spec, w, x)
    analytic = algo.workspace_bytes(spec)
    assert analytic > 0
    assert measured["measured_workspace_bytes"] == pytest.approx(analytic, rel=0.25)
    assert measured["peak_bytes"] >= spec.output_bytes


def test_measure_memory_sees_numba_allocations():
    numba = pytest.importorskip("numba")

    @numba.njit
    def alloc(n):
        a = np.ones(n)
        return a.sum()

    alloc(10)

    class NumbaAlloc(convbench.Algorithm):
        name = "t-numba-alloc"

        def prepare(self, spec, weight):
            ref = _ref_call(spec, weight)

            def call(x):
                alloc(1_000_000)  # 8 MB inside numba, freed before returning
                return ref(x)
            return call

    spec = convbench.ConvSpec(batch=1, in_channels=2, out_channels=2, height=4, width=4, kernel=1)
    x, w = spec.random_inputs(0)
    m = measure_memory(NumbaAlloc(), spec, w, x)
    assert m["peak_bytes"] >= 8_000_000
    assert m["numba_allocs"] is None or m["numba_allocs"] >= 1


# -- end to end ------------------------------------------------------------------

cli = CliRunner()


def _run(*args):
    result = cli.invoke(app, ["run", *args], env={"COLUMNS": "200"})
    return result


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke") / "run"
    result = _run(str(CONFIGS / "smoke.yaml"), "--quick", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out, result.output


def test_smoke_run_end_to_end(smoke_run):
    out, output = smoke_run
    res = read_results(out)
    summary, samples = res.summary, res.samples
    assert list(summary.columns) == SUMMARY_COLUMNS
    config = load_config(CONFIGS / "smoke.yaml")
    algorithms = config.algorithm_names()
    variants = sum(len(l.variants()) for l in config.layers)
    assert len(summary) == variants * len(algorithms) * len(config.threads)  # one row per case
    assert summary["case_id"].is_unique
    assert set(summary["status"]) <= set(STATUSES)
    assert (summary["reason"][summary["status"] != "ok"] != "").all()
    assert (summary["status"] == "ok").sum() >= len(summary) // 2
    ok = summary[summary["status"] == "ok"]
    assert (ok["time_median_s"] > 0).all() and (ok["max_rel_err"] <= ok["error_tolerance"]).all()
    counts = samples.groupby("case_id").size()
    for row in summary.itertuples():
        assert counts.get(row.case_id, 0) == row.n_samples
    base = summary[(summary["algorithm"] == "im2col") & (summary["status"] == "ok")]
    assert (base["speedup_vs_baseline"] == 1.0).all()
    # env.json and config.yaml
    env = res.env
    assert env["quick"] is True and env["seed"] == 0 and env["finished"] is True
    # measured in one isolated worker, started once and reused for the whole sweep
    assert env["isolation"] is True and env["worker"]["starts"] == 1 and env["case_timeout_s"] == 300.0
    assert (summary["numba_threads"][summary["status"] == "ok"] == 1).all()
    for key in ("cpu", "memory", "system", "python", "libraries", "threads", "convbench", "calibration",
                "start_time", "end_time"):
        assert env[key], key
    assert env["calibration"]["sgemm_gflops"]["1"] > 0
    as_run = yaml.safe_load((out / "config.yaml").read_text())
    assert as_run["timing"]["min_samples"] == 3 and len(as_run["layers"]) == len(config.layers)
    assert load_config(out / "config.yaml").layers == config.layers  # re-runnable
    # the console summary
    assert "best algorithm per layer" in output and "network total per algorithm" in output


def test_run_refuses_a_non_empty_out_folder(smoke_run):
    out, _ = smoke_run
    result = _run(str(CONFIGS / "smoke.yaml"), "--quick", "--out", str(out))
    assert result.exit_code == 2
    assert "already exists and is not empty" in result.output
    assert "Traceback" not in result.output


def test_run_bad_config_is_a_message_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("layers:\n  - {name: a, channels: 8, size: 10, kernal: 3}\n")
    result = _run(str(bad), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "bad.yaml, line 2: layer 'a' (layers[0]): unknown field 'kernal'" in result.output.replace("\n", "")
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_shards_merged_equal_the_unsharded_run(tmp_path):
    # in-process (--no-isolation) to keep this test short; the worker is covered by the smoke run
    common = [str(CONFIGS / "smoke.yaml"), "--quick", "--algorithms", "im2col,gemm-direct", "--no-isolation"]
    for args, out in (([], "full"), (["--shard", "1/2"], "s1"), (["--shard", "2/2"], "s2")):
        result = _run(*common, *args, "--out", str(tmp_path / out))
        assert result.exit_code == 0, result.output
    shards = [read_results(tmp_path / s).summary for s in ("s1", "s2")]
    assert shards[0]["case_id"].size and shards[1]["case_id"].size
    result = cli.invoke(app, ["merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    merged, full = read_results(tmp_path / "m"), read_results(tmp_path / "full")
    assert merged.summary["case_id"].tolist() == full.summary["case_id"].tolist()
    assert len(merged.samples) == sum(len(read_results(tmp_path / s).samples) for s in ("s1", "s2"))
    assert merged.env["complete"] is True
    # a folder of another sweep is refused
    result = _run(str(CONFIGS / "smoke.yaml"), "--quick", "--algorithms", "im2col", "--shard", "2/2",
                  "--no-isolation", "--out", str(tmp_path / "other"))
    assert result.exit_code == 0, result.output
    result = cli.invoke(app, ["merge", str(tmp_path / "s1"), str(tmp_path / "other"), "--out", str(tmp_path / "m2")])
    assert result.exit_code == 2 and "different config" in result.output


def test_layers_command_shows_flops_and_workspace():
    result = cli.invoke(app, ["layers", str(CONFIGS / "mobilenet.yaml"), "-a", "im2col", "--layers", "conv_pw_1*"],
                        env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "conv_pw_1" in result.output and "conv_pw_12" in result.output and "im2col" in result.output
    assert "conv_dw_1 " not in result.output
