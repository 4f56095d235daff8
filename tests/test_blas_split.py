"""Issue 31: one BLAS product on two threads goes either to the pool's blocks or to
BLAS's own threads, chosen per machine by ``convbench tune`` (or forced); both ways
are exact, keep the case's thread budget, and the choice is recorded."""

from __future__ import annotations

import types

import numba
import numpy as np
import pytest

from convbench import ConvSpec, get_algorithm, reference, relative_error
from convbench.kernels import grain, split_gemm, split_tune
from convbench.kernels._parallel import threads_used
from convbench.machine import blas as blas_mod
from convbench.machine.threads import limit_threads, thread_report

TWO = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")


@pytest.fixture
def split(monkeypatch):
    """Force a split mode for the test (a grain of one flop: the tests' small products split too)."""
    monkeypatch.setattr(grain, "_active", grain.Grain(1.0, 1.0, "test"))

    def force(mode: str) -> None:
        monkeypatch.setattr(split_gemm, "_active", (mode, "test"))

    yield force
    split_gemm.reset_split()


def _recording(monkeypatch) -> list[tuple[tuple[int, ...], int | None]]:
    """Every BLAS call split_gemm makes: the output's shape and BLAS's thread count then."""
    calls = []

    def matmul(x, y, out):
        calls.append((out.shape, blas_mod.blas_threads_set()))
        return np.matmul(x, y, out=out)

    monkeypatch.setattr(split_gemm, "np", types.SimpleNamespace(matmul=matmul))
    return calls


@TWO
def test_blas_mode_hands_one_product_to_blas_threads_whole(split, monkeypatch):
    split("blas")
    calls = _recording(monkeypatch)
    a, b = np.random.default_rng(0).standard_normal((2, 1, 300, 40))
    out = np.empty((1, 300, 300))
    with limit_threads(2):
        threads_used()
        split_gemm.matmul(a, b.reshape(1, 40, 300), out)
        assert threads_used() == 2  # BLAS's two threads count as the call's
        with blas_mod.blas_single_threaded():  # as an earlier step of a call leaves it
            pass
        split_gemm.matmul(a, b.reshape(1, 40, 300), out)
        assert blas_mod.blas_threads_set() == 1  # raised for the product only
    assert calls == [((300, 300), 2), ((300, 300), 2)]
    np.testing.assert_allclose(out[0], a[0] @ b.reshape(40, 300), rtol=1e-12)


@TWO
def test_blocks_mode_splits_one_product_over_the_pool_at_one_blas_thread(split, monkeypatch):
    split("blocks")
    calls = _recording(monkeypatch)
    with limit_threads(2):
        split_gemm.matmul(np.ones((1, 300, 8)), np.ones((1, 8, 40)), np.empty((1, 300, 40)))
    assert len(calls) == 4 and {n for _, n in calls} == {1}


@TWO
@pytest.mark.parametrize("k, blas_calls", [(8, 0), (40, 4)])
def test_blas_mode_gives_blas_threads_only_products_worth_two_grains(k, blas_calls, split, monkeypatch):
    """A stack of products of 50 x k x 30 under a grain of 20 kflop: at k=8 (24 kflop, under
    two grains) the pool takes whole matrices at one BLAS thread; at k=40 each product goes
    to BLAS's two threads in turn."""
    split("blas")
    monkeypatch.setattr(grain, "_active", grain.Grain(2e4, 1e9, "test"))
    calls = _recording(monkeypatch)
    a, b = np.ones((2, 50, k)), np.ones((4, k, 30))
    out = np.empty((4, 50, 30))
    with limit_threads(2):
        split_gemm.matmul(a, b, out)
    assert sum(n == 2 for _, n in calls) == blas_calls
    assert blas_calls or {n for _, n in calls} == {1}
    np.testing.assert_array_equal(out, np.full((4, 50, 30), float(k)))


@TWO
def test_im2col_is_exact_with_blas_threads(split):
    split("blas")
    algo = get_algorithm("im2col")
    for kw in (dict(batch=1, in_channels=9, out_channels=37, height=13, width=11, kernel=3, padding=1),
               dict(batch=1, in_channels=6, out_channels=10, height=9, width=7, kernel=1, groups=2),
               dict(batch=2, in_channels=5, out_channels=7, height=8, width=6, kernel=(3, 2), stride=2, padding=(1, 0))):
        for layout in ("nhwc", "nchw"):
            spec = ConvSpec(layout=layout, dtype="float32", **kw)
            if algo.supports(spec):
                continue
            x, w = spec.random_inputs(1)
            with limit_threads(2):
                got = algo.prepare(spec, w)(x)
            assert relative_error(got, reference(spec, x, w)) < 1e-5, spec.describe()


def test_split_is_forced_by_env_and_refuses_nonsense(monkeypatch):
    split_gemm.reset_split()
    try:
        monkeypatch.setenv(split_gemm.ENV_VAR, "blas")
        assert split_gemm.active_split() == ("blas", "env CONVBENCH_BLAS_SPLIT")
        monkeypatch.setenv(split_gemm.ENV_VAR, "both")
        split_gemm.reset_split()
        with pytest.raises(ValueError, match="CONVBENCH_BLAS_SPLIT must be one of blocks, blas"):
            split_gemm.active_split()
    finally:
        monkeypatch.delenv(split_gemm.ENV_VAR)
        split_gemm.reset_split()


def test_tuned_split_is_cached_per_cpu_recorded_and_forgotten(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(split_gemm.ENV_VAR, raising=False)
    monkeypatch.setattr(split_tune, "measure", lambda budget_s: {"mode": "blas"})
    split_gemm.reset_split()
    try:
        assert split_gemm.active_split() == ("blocks", "default")
        assert split_tune.tune_split(0.1)["mode"] == "blas"
        assert split_gemm.active_split() == ("blas", "tuned")
        assert thread_report()["blas_split"] == {"mode": "blas", "source": "tuned"}
        from convbench.kernels import tune

        assert tune.clear() is True  # `convbench tune --clear` forgets the split with the rest
        assert split_gemm.active_split() == ("blocks", "default")
    finally:
        split_gemm.reset_split()


@pytest.mark.parametrize("quiet, busy, mode", [
    ([0.6, 0.7], [0.9, 0.8], "blas"),       # faster quiet and busy (the Zen 1 VM)
    ([0.6, 0.7], [18.0, 1.1], "blocks"),    # a barrier stalled by a busy core (the Zen 4 VM)
    ([0.97, 0.96], [0.5, 0.5], "blocks"),   # within the margin quiet: the blocks stay
])
def test_blas_threads_are_chosen_only_where_they_win_quiet_and_busy(quiet, busy, mode):
    assert split_tune.choose(quiet, busy)["mode"] == mode


@TWO
def test_tune_split_times_both_ways_and_caches_a_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(split_gemm.ENV_VAR, raising=False)
    monkeypatch.setattr(split_tune, "SHAPES", [(64, 96, 80)])
    try:
        entry = split_tune.tune_split(0.2)
        assert entry["mode"] in split_gemm.MODES
        assert entry["blas_over_blocks_quiet"] > 0 and entry["blas_over_blocks_busy"] > 0
        assert split_gemm.active_split() == (entry["mode"], "tuned")
    finally:
        split_gemm.reset_split()


@TWO
@pytest.mark.parametrize("least, blas_calls", [(None, 4), (5e4, 4), (5e5, 0)])
def test_blas_threads_take_no_product_below_their_tuned_crossover(least, blas_calls, split, monkeypatch):
    """Products of 50 x 40 x 30 (120 kflop) under a grain of 20 kflop: to BLAS's two threads
    unless the tuned crossover of BLAS's own threads lies above them (then the pool's blocks)."""
    split("blas")
    monkeypatch.setattr(grain, "_active", grain.Grain(2e4, 1e9, "test"))
    monkeypatch.setattr(split_gemm, "_least", least)
    calls = _recording(monkeypatch)
    a, b = np.ones((2, 50, 40)), np.ones((4, 40, 30))
    out = np.empty((4, 50, 30))
    with limit_threads(2):
        split_gemm.matmul(a, b, out)
    assert sum(n == 2 for _, n in calls) == blas_calls
    np.testing.assert_array_equal(out, np.full((4, 50, 30), 40.0))


@pytest.mark.parametrize("least, mode", [(3e7, "blas"), (None, "blocks")])
def test_blas_threads_stay_chosen_only_where_they_beat_one_thread_somewhere(least, mode, monkeypatch):
    monkeypatch.setattr(split_tune, "_ratios", lambda budget_s: [0.6, 0.7])  # faster than the blocks
    monkeypatch.setattr(split_tune, "one_core_busy", __import__("contextlib").nullcontext)
    monkeypatch.setattr(split_tune, "blas_crossover", lambda budget_s: least)
    monkeypatch.setattr(__import__("numba").config, "NUMBA_NUM_THREADS", 2)
    entry = split_tune.measure(0.1)
    assert entry["mode"] == mode and entry["blas_flops"] == least


def test_the_tuned_crossover_is_read_with_the_split(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(split_gemm.ENV_VAR, raising=False)
    monkeypatch.setattr(split_tune, "measure", lambda budget_s: {"mode": "blas", "blas_flops": 3e7})
    split_gemm.reset_split()
    try:
        split_tune.tune_split(0.1)
        assert split_gemm.active_split() == ("blas", "tuned") and split_gemm._least == 3e7
    finally:
        split_gemm.reset_split()
