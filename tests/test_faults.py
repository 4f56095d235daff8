"""Robustness: faulty plugins lose nothing, the memory guard, hangs.

The fault-injection plugin (tests/plugins/faulty.py) is a file, so the
isolated worker loads it too. Layers are tiny and timeouts short: the
crash, abort and timeout cases each cost one worker restart (a few seconds
of imports), which is what keeps this file's time in check.
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

import convbench
from convbench.config import parse_config
from convbench.machine.memory import check_fits, format_size, parse_size
from convbench.registry import load_plugin, unregister
from convbench.results import STATUSES, read_results
from convbench.sweep import measure as rn, session
from convbench.sweep.plan import plan as make_plan
from convbench.timing import TimingSettings
from robust_helpers import FAST_TIMING, FAULTY, _invoke, _write, forget_the_faults  # noqa: F401 (a fixture)


@pytest.fixture(scope="module", autouse=True)
def _forget_the_faults(forget_the_faults):
    yield


# -- faults become rows; the sweep goes on ---------------------------------------

FAULT_CONFIG = f"""\
name: faults
algorithms: [fault-ok, fault-raises, fault-wrong-shape, fault-wrong-values, fault-sleeps, fault-abort,
             fault-segv, fault-huge-workspace, fault-allocates]
baseline: fault-ok
plugins: [{FAULTY}]
{FAST_TIMING}layers:
  - {{name: a, channels: 4, size: 6, kernel: 3, padding: 1}}
  - {{name: b, channels: 2, size: 5, kernel: 3}}
"""


def test_each_fault_is_its_own_row_and_the_sweep_completes(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVBENCH_FAULT_ALLOC", str(4 * 2**30))  # far past the worker's cap below
    config = _write(tmp_path / "faults.yaml", FAULT_CONFIG)
    out = tmp_path / "out"
    t0 = time.monotonic()
    result = _invoke("run", str(config), "--allow-config-plugins", "--out", str(out), "--case-timeout", "1", "--memory-limit", "256MiB")
    assert result.exit_code == 0, result.output
    res = read_results(out)
    s = res.summary.set_index(["layer", "algorithm"])
    assert len(s) == 2 * 9 and set(s["status"]) <= set(STATUSES)
    for layer in ("a", "b"):  # the same verdicts on both layers: the second ran after all the crashes
        row = lambda name: s.loc[(layer, name)]  # noqa: E731
        assert row("fault-ok")["status"] == "ok" and row("fault-ok")["speedup_vs_baseline"] == 1.0
        assert row("fault-ok")["n_samples"] >= 3
        assert row("fault-raises")["status"] == "error"
        assert row("fault-raises")["reason"] == "prepare() raised RuntimeError: injected fault in prepare"
        assert row("fault-wrong-shape")["status"] == "failed" and "output shape (1, 1, 1, 1)" in row("fault-wrong-shape")["reason"]
        assert row("fault-wrong-values")["status"] == "failed" and "exceeds tolerance" in row("fault-wrong-values")["reason"]
        assert row("fault-sleeps")["status"] == "timeout"
        assert re.search(r"no progress for 1 s \(the case timeout\) during the warm-up call \(at faulty.py:\d+ in call\)",
                         row("fault-sleeps")["reason"])
        assert row("fault-abort")["status"] == "crashed" and "SIGABRT" in row("fault-abort")["reason"]
        assert row("fault-segv")["status"] == "crashed"
        assert re.search(r"killed by SIGSEGV \(signal 11\) during the warm-up call \(at faulty.py:\d+ in call\)",
                         row("fault-segv")["reason"])
        guard = row("fault-huge-workspace")
        assert guard["status"] == "skipped" and "memory guard" in guard["reason"]
        assert "workspace 1.0 PiB" in guard["reason"] and "256.0 MiB" in guard["reason"]
        alloc = row("fault-allocates")
        assert alloc["status"] == "error" and "MemoryError" in alloc["reason"], alloc["reason"]
    # measured neighbours kept their samples; failed rows have none
    counts = res.samples.groupby("case_id").size()
    for r in res.summary.itertuples():
        assert counts.get(r.case_id, 0) == r.n_samples
    # per repetition (2): a worker for the pass plus one per crash / timeout (3 per layer), and 3
    # more for each time a group was measured again (its reference drifted: a busy machine); a
    # case's ``remeasured`` counts its group's extra attempts over the repetitions
    again = s.groupby(level="layer")["remeasured"].max().sum()
    assert res.env["worker"]["starts"] == 2 * (1 + 2 * 3) + 3 * again
    assert res.env["isolation"] is True and res.env["case_timeout_s"] == 1.0
    assert res.env["memory_limit_bytes"] == 256 * 2**20
    assert "crashed" in result.output and "timeout" in result.output
    print(f"fault sweep: {time.monotonic() - t0:.1f} s")


def test_runtime_registered_algorithms_need_no_isolation(tmp_path):
    class Local(convbench.Algorithm):
        name = "t-local-only"

        def prepare(self, spec, weight):
            return lambda x: convbench.reference(spec, x, weight).astype(spec.dtype)

    convbench.register(Local)
    try:
        config = parse_config(f"algorithms: [t-local-only]\nbaseline: null\n{FAST_TIMING}"
                              "layers:\n  - {name: a, channels: 2, size: 4, kernel: 1}\n", "t.yaml")
        plan = make_plan(config)
        from convbench.sweep.isolation import WorkerError

        with pytest.raises(WorkerError, match="registered in this process only.*without isolation"):
            session.run(plan, tmp_path / "iso", calibration=False)
        assert not (tmp_path / "iso").exists()
        outcome = session.run(plan, tmp_path / "inproc", calibration=False, isolation=False)
        assert [r["status"] for r in outcome.rows] == ["ok"]
    finally:
        unregister("t-local-only")



# -- memory guard, reproducibility ---------------------------------------------------


def test_memory_guard_skips_with_the_numbers():
    spec = convbench.ConvSpec(batch=1, in_channels=64, out_channels=64, height=56, width=56, kernel=3, padding=1)
    assert check_fits(spec, 0, None) is None
    reason = check_fits(spec, 10**9, 10**6)
    assert reason.startswith("memory guard: the case needs 955.3 MiB")
    assert f"input {format_size(spec.input_bytes)}" in reason and "workspace 953.7 MiB" in reason
    assert "only 976.6 KiB (1000000 bytes) is available (the memory limit of 976.6 KiB)" in reason
    load_plugin(FAULTY)
    config = parse_config(f"algorithms: [fault-ok, fault-huge-workspace]\nbaseline: fault-ok\n{FAST_TIMING}"
                          "layers:\n  - {name: a, channels: 2, size: 4, kernel: 3}\n", "t.yaml")
    (group,) = make_plan(config).groups
    rows = rn.measure_group(group, TimingSettings(min_samples=2, min_time_s=0, target_ci=None), baseline="fault-ok").rows
    assert [r["status"] for r in rows] == ["ok", "skipped"] and "1.0 PiB" in rows[1]["reason"]
    tiny = rn.measure_group(group, TimingSettings(min_samples=2, min_time_s=0, target_ci=None), memory_limit=100).rows
    assert all(r["status"] == "skipped" and "the memory limit of 100 B" in r["reason"] for r in tiny)


@pytest.mark.parametrize("text, expected", [("2GiB", 2 * 2**30), ("500MB", 500 * 10**6), ("1.5g", 1_500_000_000),
                                            ("4096", 4096), ("64 KiB", 65536)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


def test_same_config_and_seed_give_the_same_inputs_and_the_seed_is_recorded(tmp_path):
    spec = convbench.ConvSpec(batch=1, in_channels=3, out_channels=4, height=5, width=5, kernel=3)
    a, b = spec.random_inputs(7), spec.random_inputs(7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(spec.random_inputs(8)[0], a[0])
    load_plugin(FAULTY)
    config = parse_config(f"seed: 7\nalgorithms: [fault-ok]\nbaseline: null\n{FAST_TIMING}"
                          "layers:\n  - {name: a, channels: 2, size: 4, kernel: 1}\n", "t.yaml")
    outcome = session.run(make_plan(config), tmp_path / "r", calibration=False, isolation=False)
    env = json.loads((outcome.out_dir / "env.json").read_text())
    assert env["seed"] == 7 and "default_rng(seed)" in env["rng"]
    assert outcome.rows[0]["seed"] == 7



def test_a_hang_during_sampling_is_a_timeout_row_naming_the_sample(tmp_path):
    config = _write(tmp_path / "hang.yaml", f"""\
name: hang
algorithms: [fault-ok, fault-hangs-later]
baseline: fault-ok
plugins: [{FAULTY}]
{FAST_TIMING}layers:
  - {{name: a, channels: 2, size: 5, kernel: 3}}
""")
    out = tmp_path / "out"
    result = _invoke("run", str(config), "--allow-config-plugins", "--out", str(out), "--case-timeout", "1")
    assert result.exit_code == 0, result.output
    s = read_results(out).summary.set_index("algorithm")
    assert s.loc["fault-ok", "status"] == "ok"
    assert s.loc["fault-hangs-later", "status"] == "timeout"
    assert re.search(r"no progress for 1 s \(the case timeout\) during sample \d+", s.loc["fault-hangs-later", "reason"])
