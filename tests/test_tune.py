"""convbench tune: the cache file, the choice runs use, the CLI (short budget)."""

from __future__ import annotations

import json

import pytest

import convbench
from convbench.kernels import configs, tune


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(configs.ENV_VAR, raising=False)
    configs.reset_active_config()
    yield tmp_path
    configs.reset_active_config()


def test_cache_folder_follows_xdg(cache_home):
    assert tune.cache_file() == cache_home / "convbench" / "kernel-config.json"
    assert tune.cached_choice() is None
    assert configs.active_config_info()["source"] == "table"


def test_a_cached_choice_is_used_and_recorded(cache_home):
    other = configs.TABLE["generic"]
    path = tune.cache_file()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({tune.cpu_key(): {"name": other.name},
                                "another cpu | x | avx2": {"name": "f32-gemm-5x16-avx2"}}))
    assert tune.cached_choice() == other
    info = configs.active_config_info()
    assert info["name"] == other.name and info["source"] == "tuned" and info["tuned"] is True
    assert tune.clear() is True and tune.cached_choice() is None
    assert "another cpu | x | avx2" in json.loads(path.read_text())  # other CPUs kept
    assert configs.active_config_info()["source"] == "table"


def test_unknown_or_broken_cache_is_ignored(cache_home):
    path = tune.cache_file()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert tune.cached_choice() is None
    path.write_text(json.dumps({tune.cpu_key(): {"name": "f32-gemm-99x99-future"}}))
    assert tune.cached_choice() is None


def test_tune_times_candidates_and_caches_the_fastest(cache_home, monkeypatch):
    # two candidates, a tiny budget: the logic, not the speed
    cands = {k: v[:2] for k, v in configs.CANDIDATES.items()}
    monkeypatch.setattr(tune, "CANDIDATES", cands)
    monkeypatch.setattr(tune, "WORKLOAD", [("3x3 6x6 8->8", 6, 8, 8, 9), ("1x1 5x5 16->40", 5, 16, 40, 1)])
    monkeypatch.setattr(tune, "DB_WORKLOAD", [("direct-blocked 3x3 5x5 8->8", 5, 8, 3),
                                              ("direct-blocked 1x1 5x5 8->8", 5, 8, 1)])
    result = tune.tune(0.05)
    isa = configs.isa_for(configs.compile_target()[1], __import__("platform").machine())
    names = {c.name for c in cands[isa]}
    assert set(result.relative) == names and result.chosen in names
    assert result.relative[result.default] == pytest.approx(1.0)
    assert min(result.relative.values()) == result.relative[result.chosen]
    assert tune.cached_choice().name == result.chosen
    assert configs.active_config_info()["tuned"] is True


def test_cli_tune_clear(cache_home):
    from typer.testing import CliRunner

    from convbench.cli import app

    res = CliRunner().invoke(app, ["tune", "--clear"])
    assert res.exit_code == 0 and "no tuned choice" in res.output


def test_tune_times_direct_blocked_tiles_and_the_algorithm_uses_the_choice(cache_home, monkeypatch):
    import platform

    isa = configs.isa_for(configs.compile_target()[1], platform.machine())
    default = configs.TABLE[isa]
    tiles = [c for c in configs.CANDIDATES[isa] if c.db_pixels != default.db_pixels][:1]  # one: each compiles
    if not tiles:
        pytest.skip(f"the {isa} table has no direct-blocked tile candidates")
    monkeypatch.setattr(tune, "CANDIDATES", {isa: [default, *tiles]})
    monkeypatch.setattr(tune, "WORKLOAD", [("3x3 6x6 8->8", 6, 8, 8, 9)])
    monkeypatch.setattr(tune, "DB_WORKLOAD", [("direct-blocked 3x3 9x9 20->20", 9, 20, 3)])
    result = tune.tune(0.05, quant=False)
    assert set(result.relative) == {default.name, *(c.name for c in tiles)}
    assert all("direct-blocked 3x3 9x9 20->20" in per for per in result.times.values())
    chosen = configs.by_name(result.chosen)
    assert configs.active_config().db_pixels == chosen.db_pixels
    spec = convbench.ConvSpec(batch=1, in_channels=8, out_channels=8, height=6, width=6, kernel=3, padding=1,
                              layout="nhwc")
    assert f"direct-blocked-{chosen.db_pixels}x" in convbench.get_algorithm("direct-blocked").implementation(spec)


@pytest.mark.skipif(__import__("numba").config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_grain_crossover_is_the_first_confirmed_win_interpolated_timed_on_awake_pools():
    """The grain's crossover: where two threads first beat one by the margin, between the
    first size that does (confirmed by the next) and the size before; every timed call
    follows an untimed one at the same count."""
    import time

    import numba

    from convbench.kernels.grain_tune import _crossover

    counts: dict[int, list[int]] = {}

    def make(size: int):
        def call() -> None:
            t = numba.get_num_threads()
            counts.setdefault(size, []).append(t)
            # two threads halve the work and pay 1 ms: 1.0x at size 8, 1.33x at 16, 1.6x at 32
            time.sleep(size * 0.25e-3 / t + (1e-3 if t == 2 else 0.0))
        return call, float(size)

    # 1.15x falls between sizes 8 (1.0x) and 16 (1.33x): at 8 * 2 ** (0.15 / 0.33) = 10.9
    assert 9.5 < _crossover(make, [1, 2, 8, 16, 32, 64], margin=1.15, budget_s=60) < 12.5
    for seen in counts.values():
        rounds = seen[2:]  # after one call at each count, (untimed, timed) pairs at one count
        assert len(rounds) % 2 == 0 and rounds[::2] == rounds[1::2], seen


@pytest.mark.skipif(__import__("numba").config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_grain_takes_the_median_crossover_of_its_passes_and_none_when_a_pass_found_none(monkeypatch):
    """One noisy pass halves or doubles the grain; the median of three passes keeps it."""
    from convbench.kernels import grain_tune

    found = iter([8e6, 4e6, 8e6, 5e6, 5e6, 10e6, 40e6, 20e6, 30e6])
    monkeypatch.setattr(grain_tune, "_crossover", lambda *a: next(found))
    g = grain_tune.measure(budget_s=1.0)
    assert (g.flops, g.nbytes) == (4e6, 2.5e6)  # the median pass, halved: a thread's share
    assert g.python == 30e6 / 8e6  # the Python step's median crossover over the GEMM's
    found = iter([8e6, None, 8e6, 5e6, 5e6, 5e6, 30e6, 30e6, 30e6])
    monkeypatch.setattr(grain_tune, "_crossover", lambda *a: next(found))
    assert grain_tune.measure(budget_s=1.0) is None


def test_the_crossover_is_interpolated_in_log_work_between_a_loss_and_the_first_win():
    from convbench.kernels.grain_tune import _interpolated

    assert _interpolated((8.0, 1.0), (16.0, 1.3), 1.15) == pytest.approx(8 * 2 ** 0.5)
    assert _interpolated(None, (16.0, 1.3), 1.15) == 16.0  # the first size won: no lower bound


def test_cli_tune_measures_in_a_process_with_the_workers_blas_settings(monkeypatch):
    """OpenBLAS reads OPENBLAS_THREAD_TIMEOUT when it loads: without the sweep workers' value
    `convbench tune` runs itself again in a process that has it, and passes on its exit code."""
    from typer.testing import CliRunner

    from convbench.cli import app
    from convbench.cli import kernels as cli_kernels
    from convbench.machine.malloc_policy import BLAS_ENV

    runs = []
    monkeypatch.setattr(cli_kernels.subprocess, "run",
                        lambda argv, env: runs.append((argv, env)) or __import__("types").SimpleNamespace(returncode=3))
    for key in BLAS_ENV:
        monkeypatch.delenv(key, raising=False)
    res = CliRunner().invoke(app, ["tune", "--seconds", "5"])
    assert res.exit_code == 3 and len(runs) == 1
    argv, env = runs[0]
    assert argv[-3:] == ["tune", "--seconds", "5.0"] and all(env[k] == v for k, v in BLAS_ENV.items())
