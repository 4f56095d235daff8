"""The doctor's verdict, on synthetic findings, and the probe on this machine."""

import os

import pytest

from convbench.machine import noise
from convbench.machine.threads import allowed_cores, pinned


def _core(median, spread, drift=0.0):
    return {"median_gflops": median, "p10_gflops": median, "p90_gflops": median,
            "spread": spread, "drift": drift, "n": 10}


def test_a_steady_machine_is_quiet_and_needs_one_repetition():
    v = noise.verdict({"per_core": {"0": _core(60, 0.01), "1": _core(61, 0.02)},
                       "load": {"others_busy_cores": 0.0}})
    assert v["level"] == "quiet" and v["suggested_repeat"] == 1 and v["advice"] == []


def test_uneven_cores_are_reported_with_advice():
    v = noise.verdict({"per_core": {"0": _core(25, 0.02), "1": _core(54, 0.02)}})
    assert v["level"] == "very noisy" and v["imbalance"] == pytest.approx(54 / 25 - 1, abs=1e-3)
    assert any("cores differ" in a for a in v["advice"])


def test_drift_during_the_probe_counts_as_noise():
    v = noise.verdict({"per_core": {"0": _core(60, 0.02, drift=-0.07)}})
    assert v["level"] == "noisy" and v["suggested_repeat"] == 3


def test_busy_neighbours_and_a_slow_wake_up_are_named():
    v = noise.verdict({"per_core": {"0": _core(60, 0.01)}, "load": {"others_busy_cores": 1.5},
                       "sleep": {"change": -0.5}})
    assert v["level"] == "very noisy"
    assert any("other processes" in a for a in v["advice"]) and any("pause" in a for a in v["advice"])


def test_probe_measures_every_allowed_core():
    found = noise.probe(seconds_per_core=0.1)
    assert set(found["per_core"]) == {str(c) for c in allowed_cores()}
    assert all(c["median_gflops"] > 0 for c in found["per_core"].values())
    assert found["verdict"]["level"] in {"quiet", "noisy", "very noisy"}


def test_pinned_runs_on_one_core_and_restores_the_affinity():
    before = os.sched_getaffinity(0)
    core = allowed_cores()[-1]
    with pinned(core) as cpu:
        assert cpu == core and os.sched_getaffinity(0) == {core}
    assert os.sched_getaffinity(0) == before
    with pytest.raises(ValueError, match="cannot pin to core"):
        with pinned(max(before) + 1000):
            pass
