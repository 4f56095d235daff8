"""The Winograd family (F(2x2), F(4x4), F(6x6)): the transforms are exact, the algorithms run on the
shared GEMM, accept exactly 3x3 stride-1 dilation-1 layers, and stay accurate."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import convbench
from convbench import ConvSpec, reference, relative_error
from convbench.kernels.winograd_tiled import MATRICES
from convbench.testing import conformance_specs

NAMES = ["winograd", "winograd-f4", "winograd-f6"]


@pytest.mark.parametrize("m", sorted(MATRICES))
def test_transform_matrices_compute_a_1d_correlation_exactly(m):
    """A^T [(G g) * (B^T d)] == correlation of d (m+2 taps) with g (3 taps), in float64."""
    bt, g, at = MATRICES[m]
    rng = np.random.default_rng(m)
    d, w = rng.standard_normal(m + 2), rng.standard_normal(3)
    want = np.array([d[i:i + 3] @ w for i in range(m)])
    np.testing.assert_allclose(at @ ((g @ w) * (bt @ d)), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_supports_exactly_3x3_stride1_dilation1(name):
    algo = convbench.get_algorithm(name)
    for _, spec in conformance_specs():
        ok = spec.kernel == (3, 3) and spec.stride == (1, 1) and spec.dilation == (1, 1)
        assert (algo.supports(spec) is None) == ok, spec.describe()
    assert "stride 1" in algo.supports(ConvSpec(batch=1, in_channels=2, out_channels=2, height=6, width=6,
                                                kernel=3, stride=2))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kw", [
    dict(batch=2, in_channels=19, out_channels=35, height=9, width=7, padding=(0, 2, 1, 0)),
    dict(batch=1, in_channels=6, out_channels=10, height=5, width=13, padding=1, groups=2),
    dict(batch=1, in_channels=5, out_channels=10, height=6, width=6, padding=1, groups=5),  # x2
    dict(batch=2, in_channels=33, out_channels=33, height=4, width=4, padding=1, groups=33),
])
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_matches_reference_on_odd_shapes(name, kw, layout):
    spec = ConvSpec(kernel=3, layout=layout, **kw)
    algo = convbench.get_algorithm(name)
    x, w = spec.random_inputs(3)
    err = relative_error(algo.prepare(spec, w)(x), reference(spec, x, w))
    assert err <= algo.tolerance_for("float32")


def test_error_grows_with_the_tile_as_documented():
    """On a 64-channel layer F(2x2) < F(4x4) <= F(6x6), each within its tolerance."""
    spec = ConvSpec(batch=1, in_channels=64, out_channels=64, height=12, width=12, kernel=3, padding=1,
                    layout="nhwc")
    x, w = spec.random_inputs(0)
    ref = reference(spec, x, w)
    errs = {}
    for name in NAMES:
        algo = convbench.get_algorithm(name)
        errs[name] = relative_error(algo.prepare(spec, w)(x), ref)
        assert errs[name] <= algo.tolerance_for("float32")
    assert errs["winograd"] < errs["winograd-f4"] < 10 * errs["winograd-f6"]


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_two_threads_give_the_same_answer():
    from convbench.machine.threads import limit_threads

    spec = ConvSpec(batch=2, in_channels=20, out_channels=40, height=13, width=11, kernel=3,
                    padding=1, layout="nhwc")
    x, w = spec.random_inputs(1)
    call = convbench.get_algorithm("winograd-f4").prepare(spec, w)
    with limit_threads(1):
        one = call(x)
    with limit_threads(2):
        two = call(x)
    np.testing.assert_array_equal(one, two)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_transforms_count_their_arithmetic_for_threads(monkeypatch):
    """A transform's arithmetic, not only its bytes, earns it a second thread: with a grain
    of a terabyte but 0.2 MFLOP a thread, a 64-channel 24x24 layer's transforms split."""
    from convbench.kernels import grain
    from convbench.kernels._parallel import threads_used
    from convbench.kernels.winograd_tiled import input_transform, output_transform
    from convbench.machine.threads import limit_threads

    monkeypatch.setattr(grain, "_active", grain.Grain(2e5, 1e12, "test"))
    x = np.random.default_rng(0).uniform(-1, 1, (1, 24, 24, 64)).astype(np.float32)
    v = np.empty((36, 36, 64), np.float32)
    with limit_threads(2):
        threads_used()
        input_transform(4, x, 1, 1, 6, 6, v)
        assert threads_used() == 2
        output_transform(4, v, 6, 6, np.empty_like(x))
        assert threads_used() == 2


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_products_split_one_block_a_thread_and_stay_exact(name, multiplier, monkeypatch):
    """With a grain of a byte every step splits: the depthwise products run on both threads, one
    block of tiles each (channel multiplier 1 and 2), and give the one-thread answer, which
    matches the reference."""
    from convbench.kernels import _parallel, grain
    from convbench.kernels._parallel import threads_used
    from convbench.machine.threads import limit_threads
    from convbench.phases import run_steps, steps_of

    monkeypatch.setattr(grain, "_active", grain.Grain(1.0, 1.0, "test"))
    spec = ConvSpec(batch=2, in_channels=9, out_channels=9 * multiplier, height=11, width=13, kernel=3,
                    padding=(1, 0, 2, 1), groups=9, layout="nhwc")
    x, w = spec.random_inputs(6)
    call = convbench.get_algorithm(name).prepare(spec, w)
    with limit_threads(1):
        one = call(x)
    with limit_threads(2):
        two = call(x)
        (_, products), v = steps_of(call)[1], run_steps(call, x)[1]  # the products alone
        threads_used()
        chunks = []
        real = _parallel.parallel_numpy
        monkeypatch.setattr(_parallel, "parallel_numpy", lambda body, njobs, **kw: (
            real(lambda lo, hi: (chunks.append(hi - lo), body(lo, hi)), njobs, **kw)))
        products(v)
        assert threads_used() == 2
    # one block a thread: every block is a numpy call that takes the GIL
    assert len(chunks) == 2 and sum(chunks) == v.shape[0]
    np.testing.assert_array_equal(one, two)
    assert relative_error(two, reference(spec, x, w)) <= convbench.get_algorithm(name).tolerance_for("float32")
