"""Issue 31: every built-in is exact on two threads, work is split only where the
grain says it pays, and the pools share the case's thread budget (the pool's
threads x BLAS's never exceed it; helpers sleep when asked)."""

from __future__ import annotations

import time

import numba
import numpy as np
import pytest

import convbench
from convbench import ConvSpec, get_algorithm, reference, relative_error
from convbench.kernels import grain, split_gemm
from convbench.kernels._parallel import park, parallel_for, parallel_numpy, threads_used
from convbench.machine import blas as blas_mod
from convbench.machine.threads import blas_threads, limit_threads, pool_sample_start

TWO = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")


@pytest.fixture
def tiny_grain(monkeypatch):
    """A grain of one flop and one byte: even the tests' tiny layers are split."""
    monkeypatch.setattr(grain, "_active", grain.Grain(1.0, 1.0, "test"))


def _builtins() -> list[str]:
    from convbench.registry import BUILTIN_MODULES, source_of

    return [n for n in sorted(convbench.list_algorithms()) if source_of(n) in BUILTIN_MODULES
            and not getattr(get_algorithm(n), "peer", False) and "float32" in get_algorithm(n).dtypes]


#: Odd shapes: partial tiles, strides, groups, depthwise, dilation, batch > 1, a 1x1.
SHAPES = [
    dict(batch=2, in_channels=3, out_channels=5, height=7, width=9, kernel=3, padding=1),
    dict(batch=1, in_channels=4, out_channels=6, height=8, width=5, kernel=(3, 2), stride=2, padding=(1, 0), groups=2),
    dict(batch=2, in_channels=6, out_channels=12, height=9, width=7, kernel=3, padding=1, groups=6),
    dict(batch=3, in_channels=5, out_channels=7, height=6, width=6, kernel=1),
    dict(batch=1, in_channels=9, out_channels=37, height=13, width=11, kernel=3, padding=1),
    dict(batch=1, in_channels=3, out_channels=4, height=11, width=10, kernel=5, padding=2, dilation=2),
]


@TWO
@pytest.mark.parametrize("name", _builtins())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_builtin_is_exact_on_two_threads(name, dtype, tiny_grain):
    algo = get_algorithm(name)
    for kw in SHAPES:
        for layout in ("nhwc", "nchw"):
            spec = ConvSpec(layout=layout, dtype=dtype, **kw)
            if algo.supports(spec) or dtype not in algo.dtypes:
                continue
            x, w = spec.random_inputs(3)
            ref = reference(spec, x, w)
            for n in (2, 1):
                with limit_threads(n):
                    y = algo.prepare(spec, w)(x)
                err = relative_error(y, ref)
                assert err <= algo.tolerance_for(dtype), f"{name} {spec.describe()} threads={n}: {err:.3g}"


@TWO
def test_gemm_direct_splits_its_taps_only_with_a_grain_of_work(monkeypatch):
    spec = ConvSpec(batch=1, in_channels=8, out_channels=8, height=10, width=10, kernel=3, padding=1,
                    layout="nhwc")  # no layout conversions: the taps alone
    x, w = spec.random_inputs(0)
    call = get_algorithm("gemm-direct").prepare(spec, w)
    used = {}
    for flops in (1.0, 5e6):  # a tiny grain, then the default: the layer's 115 kflop are under one
        monkeypatch.setattr(grain, "_active", grain.Grain(flops, 1.0, "test"))
        with limit_threads(2):
            threads_used()
            call(x)
            used[flops] = threads_used()
    assert used == {1.0: 2, 5e6: 1}


@pytest.mark.parametrize("shape", [
    {"in_channels": 6, "out_channels": 40, "height": 4, "width": 3, "kernel": 3, "padding": (2, 1, 0, 1)},
    {"in_channels": 300, "out_channels": 9, "height": 5, "width": 4, "kernel": (3, 2), "stride": 2, "padding": 1},
    {"in_channels": 6, "out_channels": 8, "height": 9, "width": 5, "kernel": 2, "dilation": 2, "groups": 2},
])
def test_gemm_direct_adds_one_tap_per_pass(monkeypatch, shape):
    """The micro-kernel's reduction blocks never hold two taps (indirect's hold as many as fit KC):
    the output is accumulated tap by tap, as R*S GEMMs; together they cover every tap and channel."""
    from convbench.kernels.gemm import GemmKernel

    blocks = []
    real = GemmKernel.run
    monkeypatch.setattr(GemmKernel, "run", lambda self, *args: (blocks.append(args[9]), real(self, *args)))
    spec = ConvSpec(batch=2, layout="nhwc", **shape)
    x, w = spec.random_inputs(0)
    y = get_algorithm("gemm-direct").prepare(spec, w)(x)
    assert relative_error(y, reference(spec, x, w)) < 1e-5
    (kblocks,) = blocks
    assert (kblocks[:, 1] - kblocks[:, 0] == 1).all()
    covered = sorted((int(t), c) for t, _, c0, c1 in kblocks for c in range(c0, c1))
    assert covered == [(t, c) for t in range(spec.kernel_h * spec.kernel_w) for c in range(spec.channels_per_group)]


@TWO
@pytest.mark.parametrize("name", ["indirect", "im2col-numba", "gemm-direct"])
def test_the_gemm_kernel_counts_a_grouped_layers_work_in_whole_panels(monkeypatch, name):
    """Eight groups of two output channels: the kernel computes whole NR-wide panels, NR/2 times
    the useful flops. Under a grain of exactly the useful flops (one thread's worth, counted by
    those) the call runs on two threads, as the work it really does asks."""
    from convbench.kernels.gemm import gemm_kernel

    spec = ConvSpec(batch=1, in_channels=16, out_channels=16, height=12, width=12, kernel=3, padding=1,
                    groups=8, layout="nhwc")
    useful = 2.0 * spec.output_height * spec.output_width * 9 * spec.channels_per_group * spec.out_channels
    assert gemm_kernel("float32").nr >= 4 * spec.out_channels_per_group  # at least 4 grains counted in panels
    monkeypatch.setattr(grain, "_active", grain.Grain(useful, 1e12, "test"))
    x, w = spec.random_inputs(0)
    with limit_threads(2):
        call = get_algorithm(name).prepare(spec, w)
        threads_used()
        y = call(x)
        assert threads_used() == 2
    assert relative_error(y, reference(spec, x, w)) < 1e-5


@TWO
@pytest.mark.parametrize("dtype", ["float32", "u8s8"])
def test_naive_counts_its_work_per_output_value_not_per_weight_tensor(monkeypatch, dtype):
    """A 1x1 stride-2 64->64 layer on 14x14 is 0.4 MFLOP (1.6 of the grain's work): under a
    2 MFLOP grain, one thread (counting every output's reduction as the whole weight tensor
    made it 25.7 MFLOP, and split it into 7 rows of 4 us on two threads, 0.4x one's speed)."""
    monkeypatch.setattr(grain, "_active", grain.Grain(2e6, 1e9, "test"))
    small = ConvSpec(batch=1, in_channels=64, out_channels=64, height=14, width=14, kernel=1, stride=2,
                     layout="nhwc", dtype=dtype)
    big = ConvSpec(batch=1, in_channels=64, out_channels=64, height=14, width=14, kernel=3, padding=1,
                   layout="nhwc", dtype=dtype)  # 14.5 MFLOP: two threads
    for spec, threads in ((small, 1), (big, 2)):
        x, w = spec.random_inputs(0)
        call = get_algorithm("naive").prepare(spec, w)
        with limit_threads(2):
            threads_used()
            call(x)
            assert threads_used() == threads, spec.describe()


def _blas_counts() -> list[int]:
    return [lc.get_num_threads() for lc in blas_mod._blas_controllers()]


class _PluginCallingBlas(convbench.Algorithm):
    name = "t-plugin-calling-blas"

    def prepare(self, spec, weight):
        return lambda x: convbench.reference(spec, x, weight)


@pytest.fixture
def plugin():
    from convbench.registry import unregister

    unregister(_PluginCallingBlas.name)
    convbench.register(_PluginCallingBlas)
    yield _PluginCallingBlas.name
    unregister(_PluginCallingBlas.name)


@TWO
def test_numpy_chunks_run_blas_on_one_thread_until_the_case_needs_it_back(tiny_grain, plugin):
    """Inside a case BLAS stays at one thread after a built-in's step (no reset
    per step); before a plugin's sample and at the case's end it is put back."""
    seen_blas, seen_jobs = [], np.zeros(40, int)

    def body(lo: int, hi: int) -> None:
        seen_blas.append(max(_blas_counts()))
        seen_jobs[lo:hi] += 1

    outside = _blas_counts()
    with limit_threads(2):
        before = _blas_counts()
        parallel_numpy(body, 40, flops=1e9)
        assert _blas_counts() == [1] * len(before)  # left lowered for the next step
        pool_sample_start(time.perf_counter, "im2col")  # a built-in's sample: still lowered
        assert _blas_counts() == [1] * len(before)
        pool_sample_start(time.perf_counter, plugin)  # anything else: the case's count
        assert _blas_counts() == before == [2] * len(before)
        parallel_numpy(body, 40, flops=1e9)
    assert _blas_counts() == outside
    assert set(seen_blas) == {1}  # the pool's 2 threads x BLAS's 1: within the case's 2
    assert np.all(seen_jobs == 2)


def test_numpy_steps_outside_a_case_leave_blas_as_they_found_it():
    outside = _blas_counts()
    parallel_numpy(lambda lo, hi: None, 4)
    assert _blas_counts() == outside


def test_blas_threads_sets_and_restores():
    with limit_threads(1):
        with blas_threads(1):  # already one: nothing to do
            assert blas_mod.blas_threads_set() == 1
        if numba.config.NUMBA_NUM_THREADS >= 2:
            with limit_threads(2):
                with blas_threads(1):
                    assert set(_blas_counts()) == {1}
                assert set(_blas_counts()) == {2}


@pytest.mark.parametrize("na,nb,m,k,n", [(1, 1, 300, 40, 50), (2, 6, 33, 70, 20), (3, 3, 5, 7, 900),
                                          (4, 8, 400, 64, 300), (1, 5, 2, 3, 4)])
def test_split_gemm_matches_numpy_on_both_thread_counts(na, nb, m, k, n, tiny_grain):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((na, m, k))
    b = rng.standard_normal((nb, k, n))
    want = np.matmul(np.tile(a, (nb // na, 1, 1)), b)
    for t in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
        out = np.full((nb, m, n), np.nan)
        with limit_threads(t):
            split_gemm.matmul(a, b, out)
        np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("na,nb,m,k,n", [(1, 1, 300, 40, 50), (2, 6, 33, 70, 20), (4, 8, 400, 64, 300)])
def test_split_gemm_computes_every_product_once(na, nb, m, k, n, tiny_grain, monkeypatch):
    """However the work is cut (whole matrices, row or column blocks, BLAS's own
    threads), the BLAS calls add up to the product's flops, no more."""
    import types

    done = []

    def counting_matmul(x, y, out):
        done.append(2 * x.shape[-2] * x.shape[-1] * y.shape[-1] * max(out.size // (x.shape[-2] * y.shape[-1]), 1))
        return np.matmul(x, y, out=out)

    monkeypatch.setattr(split_gemm, "np", types.SimpleNamespace(matmul=counting_matmul))
    a, b = np.ones((na, m, k)), np.ones((nb, k, n))
    for t in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
        done.clear()
        with limit_threads(t):
            split_gemm.matmul(a, b, np.empty((nb, m, n)))
        assert sum(done) == 2 * nb * m * n * k, f"threads={t}"


@TWO
@pytest.mark.parametrize("m, n, calls", [(196, 64, 2), (130, 40, 2), (100, 30, 1), (300, 40, 4), (40, 200, 2)])
def test_split_gemm_cuts_one_product_into_whole_rounds_of_blocks(m, n, calls, tiny_grain, monkeypatch):
    """One matrix at two threads: blocks of at least MIN_BLOCK rows (or columns), as many as
    give each thread the same count (196 rows: two blocks of 98, not three of 66)."""
    import types

    shapes = []

    def recording_matmul(x, y, out):
        shapes.append(out.shape)
        return np.matmul(x, y, out=out)

    monkeypatch.setattr(split_gemm, "np", types.SimpleNamespace(matmul=recording_matmul))
    with limit_threads(2):
        split_gemm.matmul(np.ones((1, m, 8)), np.ones((1, 8, n)), np.empty((1, m, n)))
    assert len(shapes) == calls


def test_split_gemm_names_shapes_that_do_not_fit():
    with pytest.raises(ValueError, match="does not make"):
        split_gemm.matmul(np.ones((2, 3, 4)), np.ones((3, 4, 5)), np.ones((3, 3, 5)))
    with pytest.raises(ValueError, match="3-D"):
        split_gemm.matmul(np.ones((3, 4)), np.ones((1, 4, 5)), np.ones((1, 3, 5)))


def test_spectral_products_check_their_shapes():
    from convbench.kernels.spectral import spectral_products

    x = np.zeros((1, 1, 3, 8), np.complex64)
    w = np.zeros((1, 8, 3, 4), np.float32)
    with pytest.raises(ValueError, match="do not fit"):
        spectral_products(x, w, w, np.zeros((1, 1, 5, 8), np.complex64))
    with pytest.raises(ValueError, match="do not fit"):
        spectral_products(x.astype(np.complex128), w, w, np.zeros((1, 1, 4, 8), np.complex128))


@TWO
@pytest.mark.parametrize("grain_bytes, threads, blocks", [(1e3, 2, [2, 3]), (1e3, 1, [5]), (1e9, 2, [5])])
def test_fft_transforms_split_into_one_channel_block_a_thread(monkeypatch, grain_bytes, threads, blocks):
    """Forward and inverse transforms: one single-worker scipy.fft call per channel block, a
    block per thread the grain gives (5 channels, 5 outputs), and the answer unchanged."""
    import scipy.fft

    monkeypatch.setattr(grain, "_active", grain.Grain(1e9, grain_bytes, "test"))
    calls: list[tuple[str, int, object]] = []
    for name in ("rfft2", "irfft2"):
        real = getattr(scipy.fft, name)

        def spy(a, *args, _real=real, _name=name, **kwargs):
            calls.append((_name, a.shape[1], kwargs.get("workers")))
            return _real(a, *args, **kwargs)

        monkeypatch.setattr(scipy.fft, name, spy)
    spec = ConvSpec(batch=2, in_channels=5, out_channels=5, height=9, width=7, kernel=3, padding=(2, 0, 1, 1),
                    stride=2, layout="nchw")
    x, w = spec.random_inputs(0)
    with limit_threads(threads):
        call = get_algorithm("fft").prepare(spec, w)
        calls.clear()
        y = call(x)
    assert relative_error(y, reference(spec, x, w)) < 1e-4
    for name in ("rfft2", "irfft2"):
        assert sorted(c for n, c, _ in calls if n == name) == blocks
    assert {workers for *_, workers in calls} == {1}


@TWO
def test_park_sends_polling_helpers_to_sleep(monkeypatch, tiny_grain):
    """With polling made long (about a second), a parked helper stops burning CPU at once."""
    from convbench.kernels import _parallel

    @numba.njit(nogil=True)
    def jobs(work, out):  # pragma: no cover - compiled
        while True:
            lo, hi = _parallel.next_chunk(work)
            if lo >= hi:
                return
            for j in range(lo, hi):
                out[j] = j
            _parallel.chunk_done(work, lo, hi)

    monkeypatch.setattr(_parallel, "SPIN_POLLS", 1 << 30)
    out = np.zeros(64)
    with limit_threads(2):
        parallel_for(jobs, 64, out)
        parallel_for(jobs, 64, out)  # the helper now polls with the long limit
        park()
        time.sleep(0.02)
        c0 = time.process_time()
        time.sleep(0.2)
        burnt = time.process_time() - c0
    assert burnt < 0.05, f"helpers burnt {burnt:.3f} s of CPU after park()"
    np.testing.assert_array_equal(out, np.arange(64))


@TWO
@pytest.mark.parametrize("grain_flops, expected", [(1.0, 2), (1e15, 1)])
def test_each_case_records_the_threads_the_pool_really_ran_on(monkeypatch, grain_flops, expected):
    from convbench.config import parse_config
    from convbench.sweep.measure import measure_group
    from convbench.sweep.plan import plan
    from convbench.timing import TimingSettings

    monkeypatch.setattr(grain, "_active", grain.Grain(grain_flops, grain_flops, "test"))
    text = "name: t\nalgorithms: [indirect]\nthreads: [2]\nlayers:\n  - {name: a, channels: 8, size: 9, kernel: 3}\n"
    group = plan(parse_config(text, "t.yaml")).groups[0]
    fast = TimingSettings(min_samples=3, min_time_s=0.0, max_time_s=0.5, target_ci=None, min_sample_time_s=0.0)
    row = measure_group(group, fast, 0, "indirect", phases=False).rows[0]
    assert row["status"] == "ok" and row["threads"] == 2
    assert row["pool_threads"] == expected  # the grain's choice, not the case's count
