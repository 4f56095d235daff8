"""Numbers that survive a busy machine: preempted samples are retaken, a case that stays
contended is flagged, other processes' load is recorded, and compare says so."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import convbench
from convbench.config import parse_config
from convbench.machine.contention import RAN_MIN, LoadMeter, ran_share, wait_quiet
from convbench.registry import unregister
from convbench.sweep.measure import measure_group
from convbench.sweep.plan import plan
from convbench.timing import TimingSettings

FAST = TimingSettings(min_samples=4, min_time_s=0.0, max_time_s=0.5, target_ci=None, min_sample_time_s=0.0)
TINY = "name: t\nalgorithms: [im2col, {algo}]\nlayers:\n  - {{name: a, channels: 2, size: 5, kernel: 3}}\n"


class Sleepy(convbench.Algorithm):
    """Right answers, but every call spends most of its time off the CPU: as if preempted."""

    name = "t-sleepy"

    def prepare(self, spec, weight):
        def call(x):
            time.sleep(0.002)
            return convbench.reference(spec, x, weight).astype(spec.dtype)
        return call


@pytest.fixture
def sleepy():
    unregister(Sleepy.name)
    convbench.register(Sleepy)
    yield Sleepy.name
    unregister(Sleepy.name)


def test_ran_share_is_cpu_time_over_threads_times_wall():
    assert ran_share(0.5, 1.0, 1) == pytest.approx(0.5)
    assert ran_share(1.0, 1.0, 2) == pytest.approx(0.5)
    assert ran_share(3.0, 1.0, 2) == 1.0  # polling helpers: never more than all of it
    assert ran_share(0.0, 0.0, 1) == 1.0


@pytest.mark.alone  # im2col's row must be quiet: no other test's load beside it
def test_a_case_that_is_not_running_is_retaken_a_bounded_number_of_times_and_flagged(sleepy):
    p = plan(parse_config(TINY.format(algo=sleepy), "t.yaml"))
    group = p.groups[0]
    result = measure_group(group, FAST, 0, "im2col", phases=False)
    rows = {r["algorithm"]: r for r in result.rows}
    assert rows[sleepy]["status"] == "ok" and rows[sleepy]["contended"] is True
    assert rows[sleepy]["retaken"] == FAST.min_samples  # the bound: a busy machine still finishes
    assert rows["im2col"]["retaken"] < FAST.min_samples and rows["im2col"]["contended"] is False
    ran = [s["ran"] for s in result.samples if s["algorithm"] == sleepy]
    assert ran and max(ran) < RAN_MIN  # the samples kept say they were not running
    assert rows[sleepy]["other_load"] is None or rows[sleepy]["other_load"] >= 0


def test_the_load_meter_sees_another_process_keep_a_core_busy():
    if not Path("/proc/stat").is_file():
        pytest.skip("no /proc/stat on this system: the meter says 'unknown' (tested below)")
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time() + 1.5\nwhile time.time() < t: pass"])
    try:
        time.sleep(0.2)
        meter = LoadMeter().start()
        time.sleep(0.8)
        got = meter.stop()
    finally:
        busy.kill()
        busy.wait()
    assert got["other_load"] >= 0.5, got


def test_a_repetition_is_contended_by_retaken_samples_or_by_other_processes_load():
    from convbench.machine.contention import CONTENDED_SHARE, QUIET_CORES, contended

    assert not contended(0, 100, 0.0) and not contended(0, 100, None)
    assert contended(int(CONTENDED_SHARE * 100) + 1, 100, 0.0)  # preempted too often
    assert not contended(int(CONTENDED_SHARE * 100), 100, QUIET_CORES / 2)
    # never preempted, but a neighbour kept a core busy: it slows what it does not preempt
    assert contended(0, 100, QUIET_CORES)


def test_a_case_measured_beside_a_busy_process_is_flagged_contended():
    if not Path("/proc/stat").is_file():
        pytest.skip("no /proc/stat on this system: other processes' load is unknown there")
    p = plan(parse_config(TINY.format(algo="indirect"), "t.yaml"))
    slow = TimingSettings(min_samples=4, min_time_s=0.6, max_time_s=0.8, target_ci=None, min_sample_time_s=0.02)
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time() + 120\nwhile time.time() < t: pass"])  # killed below
    try:
        time.sleep(0.2)
        rows = measure_group(p.groups[0], slow, 0, "im2col", phases=False).rows
    finally:
        busy.kill()
        busy.wait()
    assert all(r["contended"] is True and r["other_load"] >= 0.5 for r in rows), [(r["status"], r["reason"], r["contended"], r["other_load"], r["retaken"], r["n_samples"]) for r in rows]


def test_wait_quiet_returns_at_once_when_the_threshold_is_met_and_gives_up_in_time():
    assert wait_quiet(5.0, threshold=1e9)["quiet"] is True
    t0 = time.monotonic()
    got = wait_quiet(0.3, threshold=-1.0)  # never quiet: gives up after the limit
    assert not got["quiet"] and time.monotonic() - t0 < 3.0


def test_a_flag_reads_as_set_only_where_the_csv_says_true():
    import pandas as pd

    from convbench.results.schema import flag

    rows = pd.DataFrame({"contended": [True, "False", np.nan, "True"]})
    assert flag(rows, "contended").tolist() == [True, False, False, True]
    assert flag(pd.DataFrame({"x": [1, 2]}), "contended").tolist() == [False, False]
