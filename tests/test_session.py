"""The library's sweep API without the command line: typed plan arguments, messages
about values (never about options), one monitor, and resume/out/shard reconciliation."""

from pathlib import Path

import pytest

import convbench
from convbench.config import ConfigError, load_config
from convbench.results import ResultsError
from convbench.sweep.measure import Monitor
from convbench.sweep.plan import check_shard, plan
from convbench.sweep.session import prepare_run, run
from convbench.timing import TimingSettings

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
FAST = TimingSettings(min_samples=2, min_time_s=0.0, max_time_s=0.2, target_ci=None, min_sample_time_s=0.0, repeat=1)
TINY = "name: tiny\nalgorithms: [im2col, gemm-direct]\nlayers:\n  - {name: a, channels: 2, size: 5, kernel: 3}\n"


@pytest.mark.parametrize("kwargs, fragment", [
    ({"threads": [0]}, "must be a thread count (an int >= 1), got 0"),
    ({"threads": ["2"]}, "got '2'"),
    ({"shard": (3, 2)}, "with 1 <= I <= N (shards are numbered 1..N), got 3/2"),
    ({"shard": (500, 500)}, "shard 500/500 is empty"),
    ({"algorithms": ["indirekt"]}, "Did you mean 'indirect'?"),
    ({"layers": ["zzz"]}, "no layer matches 'zzz'"),
])
def test_plan_refuses_bad_values_with_messages_about_values(kwargs, fragment):
    with pytest.raises((ValueError, ConfigError)) as info:
        plan(load_config(CONFIGS / "smoke.yaml"), **kwargs)
    message = str(info.value)
    assert fragment in message and "--" not in message


def test_check_shard_takes_a_pair_of_ints():
    assert check_shard((2, 4)) == (2, 4)
    for bad in ("2/4", (2,), (1.0, 2), [1, 2]):
        with pytest.raises(ValueError, match="must be a pair"):
            check_shard(bad)


def test_plan_takes_typed_overrides():
    p = plan(load_config(CONFIGS / "smoke.yaml"), algorithms=["naive"], threads=[1, 2], layers=["*"])
    assert p.algorithms[-1] == "naive" and p.config.baseline in p.algorithms  # the baseline is added
    assert {g.threads for g in p.groups} == {1, 2}


class Recorder(Monitor):
    def __init__(self):
        self.events = []

    def begin(self, group):
        self.events.append(("begin", len(group.cases)))

    def started(self, pos):
        self.events.append(("started", pos))

    def finished(self, pos, row, samples, phases=None):
        self.events.append(("finished", pos, row["status"], len(samples)))


@pytest.mark.parametrize("isolation", [False, True])
def test_one_monitor_hears_every_case_in_process_and_in_the_worker(tmp_path, isolation):
    (tmp_path / "c.yaml").write_text(TINY)
    the_plan = plan(load_config(tmp_path / "c.yaml"))
    the_plan.timing = FAST
    rec = Recorder()
    outcome = run(the_plan, tmp_path / "r", monitor=rec, calibration=False, isolation=isolation)
    assert rec.events[0] == ("begin", 2)
    assert [e[1] for e in rec.events if e[0] == "started"] == [0, 1]
    finished = [e for e in rec.events if e[0] == "finished"]
    assert sorted(e[1] for e in finished) == [0, 1] and all(e[2] == "ok" and e[3] >= 2 for e in finished)
    assert outcome.status_counts["ok"] == 2 and outcome.cases_measured == 2


def test_prepare_run_reconciles_resume_with_out_and_shard(tmp_path):
    (tmp_path / "c.yaml").write_text(TINY)
    first = prepare_run(tmp_path / "c.yaml", out=tmp_path / "r", threads=[1, 2], shard=(2, 2))
    assert first.out_dir == tmp_path / "r" and not first.resume
    first.plan.timing = FAST
    run(first, calibration=False, isolation=False)
    with pytest.raises(ResultsError, match="either a new results folder or one to resume, not both"):
        prepare_run(resume=tmp_path / "r", out=tmp_path / "elsewhere")
    again = prepare_run(resume=tmp_path / "r")  # the folder's own config.yaml and shard
    assert again.resume and again.plan.shard == (2, 2) and again.out_dir == tmp_path / "r"
    assert run(again, calibration=False, isolation=False).cases_measured == 0  # nothing was missing
    with pytest.raises(ResultsError, match="not empty"):
        prepare_run(tmp_path / "c.yaml", out=tmp_path / "r")


def test_the_public_api_runs_a_sweep(tmp_path):
    (tmp_path / "c.yaml").write_text(TINY)
    the_plan = convbench.plan(convbench.load_config(tmp_path / "c.yaml"), algorithms=["im2col"])
    the_plan.timing = FAST
    outcome = convbench.run(the_plan, tmp_path / "r", calibration=False, isolation=False)
    results = convbench.read_results(outcome.out_dir)
    assert list(results.summary["status"]) == ["ok"]


def test_a_sweep_warms_blas_before_it_times_a_case(tmp_path, monkeypatch):
    """A fresh process's float32 BLAS ran 3x slow until a larger product had run (on the Zen 1
    VM; convbench.machine.blas.warm_blas): the measuring process runs one before any case."""
    import convbench.machine.measuring as measuring

    (tmp_path / "c.yaml").write_text(TINY)
    the_plan = plan(load_config(tmp_path / "c.yaml"))
    the_plan.timing = FAST
    rec = Recorder()
    monkeypatch.setattr(measuring, "warm_blas", lambda: rec.events.append(("warm",)))
    run(the_plan, tmp_path / "r", monitor=rec, calibration=False, isolation=False)
    kinds = [e[0] for e in rec.events]
    assert kinds.count("warm") == 1 and kinds.index("warm") < kinds.index("started")


def test_warm_blas_runs_a_large_product_of_each_precision(monkeypatch):
    import numpy as np

    from convbench.machine.blas import warm_blas

    seen = []
    monkeypatch.setattr(np, "ones", lambda shape, dtype: seen.append((shape, np.dtype(dtype))) or np.zeros(shape, dtype))
    warm_blas()
    assert {d for _, d in seen} == {np.dtype(np.float64), np.dtype(np.float32)}
    assert all(s[0] >= 256 for s, _ in seen)  # 64^3 did not do it in a sweep's process
