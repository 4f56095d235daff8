"""The grain (convbench/kernels/grain.py): one thread per grain of a step's work, a
larger grain for steps of Python calls, read from the environment or the tune cache."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from convbench.kernels import grain
from convbench.kernels._parallel import parallel_numpy, threads_used
from convbench.machine.threads import limit_threads


def test_grain_gives_one_thread_per_grain_of_work(monkeypatch):
    monkeypatch.setattr(grain, "_active", grain.Grain(1e6, 1e5, "test"))
    assert grain.threads_for(flops=5e5, most=4) == 1  # less than a grain: one thread
    assert grain.threads_for(flops=2.5e6, most=4) == 2
    assert grain.threads_for(flops=1e9, most=4) == 4  # never more than the case's
    assert grain.threads_for(nbytes=3e5, most=8) == 3
    assert grain.threads_for(flops=1e3, nbytes=1e6, most=8) == 8  # the larger count of the two
    assert grain.threads_for(most=4) == 4  # no estimate: every thread, as before
    assert grain.threads_for(flops=1e12, most=1) == 1


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_a_step_of_python_calls_needs_the_python_factor_times_more_work(monkeypatch):
    monkeypatch.setattr(grain, "_active", grain.Grain(1e6, 1e5, "test", python=4.0))
    assert grain.threads_for(flops=2.5e6, most=4) == 2
    assert grain.threads_for(flops=2.5e6, most=4, python=True) == 1  # 2.5 compiled grains, 0.6 Python ones
    assert grain.threads_for(nbytes=1e6, most=8, python=True) == 2
    with limit_threads(2):
        for flops, expected in ((2.5e6, 1), (8e6, 2)):
            threads_used()
            parallel_numpy(lambda lo, hi: None, 16, flops=flops)
            assert threads_used() == expected, flops


def test_grain_is_read_from_env_and_refuses_nonsense(monkeypatch):
    grain.reset_grain()
    monkeypatch.setenv(grain.ENV_VAR, "2e6,4096")
    try:
        g = grain.active_grain()
        assert (g.flops, g.nbytes, g.source) == (2e6, 4096, "env CONVBENCH_GRAIN")
        monkeypatch.setenv(grain.ENV_VAR, "lots")
        grain.reset_grain()
        with pytest.raises(ValueError, match="FLOPS,BYTES"):
            grain.active_grain()
    finally:
        monkeypatch.delenv(grain.ENV_VAR)
        grain.reset_grain()


def test_tuned_grain_is_cached_per_cpu_and_forgotten(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(grain.ENV_VAR, raising=False)
    from convbench.kernels import grain_tune

    monkeypatch.setattr(grain_tune, "measure", lambda budget_s: grain.Grain(3e6, 2e5, "tuned", python=5.0))
    grain.reset_grain()
    try:
        assert grain_tune.tune_grain(0.1)["flops"] == 3e6
        g = grain.active_grain()
        assert (g.flops, g.nbytes, g.source, g.python) == (3e6, 2e5, "tuned", 5.0)
        assert grain_tune.forget_grain() is True and grain.active_grain() == grain.DEFAULT
    finally:
        grain.reset_grain()


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_small_work_runs_on_one_thread_and_large_on_the_case_threads(monkeypatch):
    from convbench.kernels.gemm import PackedGemm

    monkeypatch.setattr(grain, "_active", grain.Grain(1e6, 1e6, "test"))
    g = PackedGemm(np.ones((16, 16), np.float32))
    with limit_threads(2):
        threads_used()
        g(np.ones((4, 16), np.float32))  # 2 kflop
        assert threads_used() == 1
        g(np.ones((4096, 16), np.float32))  # 2 Mflop: two grains
        assert threads_used() == 2


def test_an_older_tunes_grain_without_the_python_factor_gets_the_default_one(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(grain.ENV_VAR, raising=False)
    from convbench.kernels.configs import save_tuned_entry

    save_tuned_entry(grain.KEY_SUFFIX, {"flops": 3e6, "nbytes": 2e5, "when": "2026-12-01T00:00:00+0000"})
    grain.reset_grain()
    try:
        assert grain.active_grain() == grain.Grain(3e6, 2e5, "tuned", grain.DEFAULT.python)
    finally:
        grain.reset_grain()
