"""Kernel-level tests for naive, indirect and im2col-numba and their numba
micro-kernels: every algorithm against the float64 reference on odd shapes,
the GEMM micro-kernel alone against numpy, the indirection buffer, threads."""

from __future__ import annotations

import re

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convbench
from convbench import ConvSpec, reference, relative_error
from convbench.kernels import depthwise as dw_mod
from convbench.kernels import gemm as gemm_mod
from convbench.kernels._parallel import new_work
from convbench.kernels.configs import TABLE, active_config, compile_target
from convbench.kernels.gemm import PackedGemm, gemm, gemm_kernel, k_blocks, pack_weights
from convbench.kernels.indirection import indirection_buffer, indirection_bytes

ALGORITHMS = ["naive", "indirect", "im2col-numba"]

# Odd shapes: C and K not multiples of the tile, strides 2/3, dilation 2,
# asymmetric padding, groups, depthwise (x1, x2), batch 3, 1xN / Nx1, 1x1 output.
SPECS = {
    "c1k1": dict(batch=1, in_channels=1, out_channels=1, height=5, width=4, kernel=3, padding=1),
    "c3k5": dict(batch=1, in_channels=3, out_channels=5, height=7, width=6, kernel=3, padding=1),
    "c17k17_s2_asym_b3": dict(batch=3, in_channels=17, out_channels=17, height=9, width=8,
                              kernel=3, stride=2, padding=(0, 2, 1, 0)),
    "s3_d2_1x3": dict(batch=1, in_channels=5, out_channels=3, height=10, width=11,
                      kernel=(1, 3), stride=3, dilation=2, padding=2),
    "3x1_g2": dict(batch=2, in_channels=4, out_channels=6, height=6, width=5, kernel=(3, 1),
                   groups=2, padding=1),
    "g2_k17": dict(batch=1, in_channels=6, out_channels=34, height=5, width=5, kernel=3,
                   groups=2, padding=(0, 2, 1, 0)),
    "dw_s2": dict(batch=2, in_channels=5, out_channels=5, height=7, width=7, kernel=3,
                  groups=5, padding=1, stride=2),
    "dw_x2_d2": dict(batch=1, in_channels=3, out_channels=6, height=7, width=7, kernel=3,
                     groups=3, padding=(0, 2, 1, 0), dilation=2),
    "dw_c37": dict(batch=1, in_channels=37, out_channels=37, height=6, width=6, kernel=3,
                   groups=37, padding=1),
    "1x1": dict(batch=1, in_channels=17, out_channels=33, height=5, width=5, kernel=1),
    "1x1_s2": dict(batch=2, in_channels=5, out_channels=17, height=7, width=6, kernel=1, stride=2),
    "out1x1": dict(batch=2, in_channels=40, out_channels=20, height=3, width=3, kernel=3),
    "5x5_nonsquare": dict(batch=1, in_channels=3, out_channels=7, height=9, width=5, kernel=(5, 2),
                          padding=(2, 1, 0, 1)),
    "many_channels": dict(batch=1, in_channels=600, out_channels=19, height=3, width=4, kernel=3,
                          padding=1),
}


def _check(name: str, spec: ConvSpec, seed: int = 0) -> None:
    algo = convbench.get_algorithm(name)
    assert algo.supports(spec) is None
    x, w = spec.random_inputs(seed)
    call = algo.prepare(spec, w)
    y = call(x)
    assert isinstance(y, np.ndarray) and y.shape == spec.output_shape
    assert y.dtype == spec.np_dtype
    err = relative_error(y, reference(spec, x, w))
    assert err <= algo.tolerance_for(spec.dtype), f"{name} {spec.describe()}: error {err:.3g}"
    # No state leaks between calls: a second, different input gets its own right
    # answer, the first answer is not overwritten (a reused output buffer), and the
    # first input again gives the first answer. The same input twice could not
    # catch an algorithm that keeps what it computed for the first input.
    kept = y.copy()
    x2, _ = spec.random_inputs(seed + 1)
    err2 = relative_error(call(x2), reference(spec, x2, w))
    assert err2 <= algo.tolerance_for(spec.dtype), f"{name} {spec.describe()}: second input's error {err2:.3g}"
    np.testing.assert_array_equal(y, kept)
    np.testing.assert_array_equal(call(x), y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("shape", list(SPECS), ids=list(SPECS))
@pytest.mark.parametrize("name", ALGORITHMS)
def test_matches_reference(name, shape, layout, dtype):
    _check(name, ConvSpec(layout=layout, dtype=dtype, **SPECS[shape]))


@pytest.mark.parametrize("name", ALGORITHMS)
def test_registered_with_interface(name):
    algo = convbench.get_algorithm(name)
    assert algo.name == name and algo.description
    assert algo.natural_layout == "nhwc"
    spec = ConvSpec(layout="nchw", **SPECS["c3k5"])
    assert isinstance(algo.workspace_bytes(spec), int) and algo.workspace_bytes(spec) >= 0


@settings(deadline=None, max_examples=25)
@given(data=st.data())
def test_fuzz_against_reference(data):
    groups = data.draw(st.sampled_from([1, 1, 2, 3]))
    depthwise = groups > 1 and data.draw(st.booleans())
    cin = groups if depthwise else groups * data.draw(st.integers(1, 6))
    cout = groups * data.draw(st.integers(1, 2 if depthwise else 19))
    kh, kw = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    dh, dw = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    pad = tuple(data.draw(st.integers(0, 2)) for _ in range(4))
    h = data.draw(st.integers(max(1, dh * (kh - 1) + 1 - pad[0] - pad[1]), 9))
    w = data.draw(st.integers(max(1, dw * (kw - 1) + 1 - pad[2] - pad[3]), 9))
    spec = ConvSpec(
        batch=data.draw(st.integers(1, 3)), in_channels=cin, out_channels=cout, height=h,
        width=w, kernel=(kh, kw), stride=(data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))),
        padding=pad, dilation=(dh, dw), groups=groups,
        layout=data.draw(st.sampled_from(["nhwc", "nchw"])),
        dtype=data.draw(st.sampled_from(["float32", "float64"])),
    )
    _check(data.draw(st.sampled_from(ALGORITHMS)), spec, seed=data.draw(st.integers(0, 9)))


# -- the GEMM micro-kernel alone ---------------------------------------------

MR = active_config().mr


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 3, 5), (13, 600, 17), (64, 1030, 40),
                                   (MR, 16, 16), (2 * MR + 1, 513, 300)])
def test_gemm_matches_numpy(m, k, n, dtype):
    rng = np.random.default_rng(m * k * n)
    a = rng.uniform(-1, 1, (m, k)).astype(dtype)
    b = rng.uniform(-1, 1, (k, n)).astype(dtype)
    want = a.astype(np.float64) @ b.astype(np.float64)
    got = gemm(a, b)
    assert got.dtype == dtype and got.shape == (m, n)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert np.max(np.abs(got - want)) <= tol * np.max(np.abs(want)) * max(1, np.sqrt(k) / 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("isa", list(TABLE))
def test_every_configuration_is_correct(isa, dtype):
    """Each table entry's kernels (GEMM with partial tiles and several KC blocks,
    depthwise with a channel tail) are right on this CPU, native or not:
    LLVM lowers a wider vector than the machine has to several narrower ones."""
    cfg = TABLE[isa]
    rng = np.random.default_rng(1)
    m, k, n = 2 * cfg.mr + 3, cfg.kc + 7, cfg.nr(dtype) + 5
    a = rng.uniform(-1, 1, (m, k)).astype(dtype)
    b = rng.uniform(-1, 1, (k, n)).astype(dtype)
    want = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    assert np.max(np.abs(gemm(a, b, cfg) - want)) <= tol * np.max(np.abs(want))
    # depthwise: channels = one full tile + a tail, pixels not a multiple of the tile
    spec = ConvSpec(batch=2, in_channels=cfg.dw_channels(dtype) + 3,
                    out_channels=cfg.dw_channels(dtype) + 3, height=5, width=cfg.dw_pixels + 1,
                    kernel=3, padding=1, groups=cfg.dw_channels(dtype) + 3, layout="nhwc",
                    dtype=np.dtype(dtype).name)
    x, w = spec.random_inputs(0)
    offs = indirection_buffer(spec)
    c = spec.in_channels
    out = np.empty(spec.output_shape, dtype)
    dw_mod.depthwise(x.reshape(-1), np.zeros(c, dtype), offs, 2, 5 * spec.width * c, c, 1,
                     dw_mod.pack_depthwise(w, dtype), out.reshape(-1), cfg)
    assert relative_error(out, reference(spec, x, w)) <= tol


def _fma_count(isa: str, width: str) -> int:
    cfg = TABLE[isa]
    kern = gemm_kernel(np.float32, cfg)
    k = 8
    a = np.ones(cfg.mr * k, np.float32)
    offs = (np.arange(cfg.mr, dtype=np.int64) * k).reshape(cfg.mr, 1)
    b = kern.pack(np.ones((kern.nr, k, 1, 1), np.float32), 1)
    out = np.zeros(cfg.mr * kern.nr, np.float32)
    # numba cannot show the assembly of cached code: compile an uncached twin
    twin = numba.njit(nogil=True, fastmath=True)(gemm_mod.jobs_for(cfg).py_func)
    twin(new_work(1, 1), a, a, offs, 1, 0, 1, k, kern.nr, b, kern.k_blocks(1, k), 1, out)
    assert np.all(out == k)
    asm = twin.inspect_asm(twin.signatures[0])
    return len(re.findall(rf"vfmadd\d+ps\s+[^\n]*{width}", asm))


_HOST_FEATURES = compile_target()[1]


@pytest.mark.parametrize("isa,width,needs", [("avx512", "zmm", "avx512f"), ("avx2", "ymm", "avx2")])
def test_gemm_is_register_blocked(isa, width, needs):
    """The float32 inner loop is MR x nr_vectors broadcast-FMAs on registers of
    the configured width: 16 zmm FMAs for 8x32 on AVX-512, 10 ymm for 5x16 on
    AVX2 (the AVX2 tile stays ymm on an AVX-512 machine too)."""
    if needs not in _HOST_FEATURES:
        pytest.skip(f"this CPU has no {needs}")
    cfg = TABLE[isa]
    assert _fma_count(isa, width) >= cfg.mr * cfg.nr_vectors


def test_pack_weights_layout():
    k, cg, r, s = 19, 3, 2, 2
    w = np.arange(k * cg * r * s, dtype=np.float32).reshape(k, cg, r, s)
    nr = 16
    p = pack_weights(w, 1, np.float32, nr).reshape(1, -(-k // nr), r * s, cg, nr)
    assert p[0, 1, 3, 2, 2] == w[nr + 2, 2, 1, 1]
    assert np.all(p[0, 1, :, :, k - nr:] == 0)  # padded output channels are zero


def test_k_blocks_cover_the_reduction_once():
    for taps, cg in [(9, 64), (9, 700), (1, 1030), (25, 3), (1, 1)]:
        cover = np.zeros((taps, cg), int)
        for t0, t1, c0, c1 in k_blocks(taps, cg, 512):
            cover[t0:t1, c0:c1] += 1
        assert np.all(cover == 1)


# -- indirection buffer --------------------------------------------------------

def test_indirection_buffer_points_padding_at_the_zero_vector():
    spec = ConvSpec(batch=2, in_channels=3, out_channels=4, height=4, width=5, kernel=3,
                    stride=2, padding=(1, 0, 0, 2), layout="nhwc")
    offs = indirection_buffer(spec)
    assert offs.shape == (spec.output_height * spec.output_width, 9)
    assert offs.dtype == np.int64
    assert indirection_bytes(spec) == offs.nbytes
    # output (0, 0), tap (0, 0) reads input row -1: padding
    assert offs[0, 0] == -1
    # output (0, 1), tap (1, 1) reads input (0, 3)
    assert offs[1, 4] == (0 * 5 + 3) * 3
    # every real offset is a pixel start inside one image, never a padded copy
    real = offs[offs >= 0]
    assert np.all(real % 3 == 0) and real.max() < 4 * 5 * 3


def test_indirect_workspace_is_buffer_plus_zero_vector():
    spec = ConvSpec(layout="nhwc", **SPECS["c17k17_s2_asym_b3"])
    algo = convbench.get_algorithm("indirect")
    assert algo.workspace_bytes(spec) == indirection_bytes(spec) + 17 * 4


def test_depthwise_does_not_use_gemm(monkeypatch):
    import convbench.algorithms.indirect as mod

    def no_gemm(*args, **kwargs):
        raise AssertionError("depthwise layer went through the GEMM path")

    monkeypatch.setattr(mod, "gemm_kernel", no_gemm)
    _check("indirect", ConvSpec(layout="nhwc", **SPECS["dw_x2_d2"]))


def test_im2col_numba_skips_copy_for_1x1(monkeypatch):
    import convbench.algorithms.im2col_numba as mod

    def no_copy(*args):
        raise AssertionError("1x1 stride-1 layer was copied")

    monkeypatch.setattr(mod, "im2row", no_copy)
    _check("im2col-numba", ConvSpec(layout="nhwc", **SPECS["1x1"]))
    assert convbench.get_algorithm("im2col-numba").workspace_bytes(
        ConvSpec(layout="nhwc", **SPECS["1x1"])) == 25 * 8


# -- threads -------------------------------------------------------------------

@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("name", ALGORITHMS)
def test_two_threads_give_the_same_answer(name):
    spec = ConvSpec(layout="nhwc", **SPECS["c17k17_s2_asym_b3"])
    x, w = spec.random_inputs()
    call = convbench.get_algorithm(name).prepare(spec, w)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = call(x)
        numba.set_num_threads(2)
        two = call(x)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(one, two)


def test_packed_gemm_reuses_packing():
    b = np.random.default_rng(0).uniform(-1, 1, (20, 9)).astype(np.float32)
    g = PackedGemm(b)
    for m in (1, 6, 11):
        a = np.random.default_rng(m).uniform(-1, 1, (m, 20)).astype(np.float32)
        np.testing.assert_allclose(g(a), a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_limit_threads_sets_every_pool_and_restores():
    """Every pool follows limit_threads, checked not assumed: numba (and so the
    kernels' own pool), each BLAS/OpenMP library threadpoolctl sees, FFT
    workers, torch where loaded; alternating counts leaves no pool behind."""
    import sys

    from threadpoolctl import threadpool_info

    from convbench.machine.threads import fft_workers, limit_threads, thread_report

    before = thread_report()
    for n in (1, 2, 1, 2):
        with limit_threads(n):
            assert numba.get_num_threads() == n
            assert fft_workers() == n
            assert all(p["num_threads"] == n for p in threadpool_info()), threadpool_info()
            torch = sys.modules.get("torch")
            if torch is not None:
                assert torch.get_num_threads() == n
    after = thread_report()
    assert after["numba_threads"] == before["numba_threads"]
    assert after["blas_threads"] == before["blas_threads"]


@pytest.mark.parametrize("shape,dtype", [(7, "float32"), ((3, 5, 16), "float64"), ((1000, 33), "float32"),
                                         ((3, 5), "uint8"), ((9,), "complex128"), ((3, 7), "float16"),
                                         ((4, 3), np.dtype([("a", "f4"), ("b", "i1")]))])
def test_aligned_arrays_start_on_a_cache_line(shape, dtype):
    from convbench.kernels.aligned import ALIGN, aligned_empty

    a = aligned_empty(shape, dtype)
    assert a.ctypes.data % ALIGN == 0
    assert a.shape == (shape if isinstance(shape, tuple) else (shape,)) and a.dtype == dtype
    assert a.flags.c_contiguous and a.flags.writeable
    packed = pack_weights(np.ones((40, 9, 3, 3)), 1, dtype, 32)
    assert packed.ctypes.data % ALIGN == 0


# a tile a band, parts of a row, two rows a band with a short last, one band
@pytest.mark.parametrize("band_bytes", [1, 3000, 13000, 1 << 30])
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("width, stride, padding", [(8, (2, 1), (1, 0, 2, 1)), (2, (1, 3), (0, 2, 5, 4))])
def test_im2col_numba_depthwise_bands_match_the_reference(monkeypatch, band_bytes, layout, width, stride, padding):
    monkeypatch.setattr(dw_mod, "BAND_BYTES", band_bytes)
    # the second: columns that read only padding, at both ends of the row
    spec = ConvSpec(batch=2, in_channels=21, out_channels=42, height=13, width=width, kernel=3, stride=stride,
                    dilation=(1, 2), padding=padding, groups=21, layout=layout)
    x, w = spec.random_inputs(3)
    call = convbench.get_algorithm("im2col-numba").prepare(spec, w)
    assert relative_error(call(x), reference(spec, x, w)) < 1e-5


def test_depthwise_bands_are_whole_rows_or_even_parts_of_one_in_whole_tiles(monkeypatch):
    monkeypatch.setattr(dw_mod, "BAND_BYTES", 100 * 9 * 4 * 8)  # 100 pixels of 8 float32 channels, 3x3
    assert dw_mod.band_shape(50, 30, 8, 9, 4, 4) == (3, 30)  # three whole rows fit
    assert dw_mod.band_shape(50, 101, 8, 9, 4, 4) == (1, 52)  # two parts of 51 pixels -> whole tiles of 4
    assert dw_mod.band_shape(50, 1001, 8, 9, 4, 4) == (1, 92)  # 11 parts of 91 -> 92, the last 81
    assert dw_mod.band_shape(50, 3, 800, 9, 4, 4) == (1, 3)  # a tile wider than the row: the row


def test_im2col_depthwise_runs_the_tile_function_it_is_given_on_every_band(monkeypatch):
    from numba import njit

    monkeypatch.setattr(dw_mod, "BAND_BYTES", 1000)  # parts of a row: 10 pixels of 9 taps x 4 floats are 1440 B
    @njit(cache=True)
    def count_bands(work, x, zero, offs, img_stride, channels, mult, w, out):  # pragma: no cover - compiled
        out[0] += 1.0  # each band's own output slice: its first value counts the band

    x = np.ones((2, 9, 10, 4), np.float32)
    out = np.zeros((2, 9, 10, 4), np.float32)
    dw_mod.im2col_depthwise(x, (3, 3), (1, 1), (1, 1), 1, 1, np.zeros(36, np.float32), out, tiles=count_bands)
    rows, cols = dw_mod.band_shape(9, 10, 4, 9, 4, dw_mod.active_config().dw_pixels)
    assert out.sum() == 2 * -(-9 // rows) * -(-10 // cols)  # nothing else written: the kernel was replaced


def test_im2col_depthwise_refuses_arrays_that_do_not_fit():
    x = np.zeros((1, 6, 6, 4), np.float32)
    w = np.zeros(9 * 4, np.float32)
    with pytest.raises(ValueError, match="do not fit a 3x3 depthwise layer"):
        dw_mod.im2col_depthwise(x, (3, 3), (1, 1), (1, 1), 1, 1, w, np.zeros((1, 6, 6, 5), np.float32))
    with pytest.raises(ValueError, match="do not fit"):
        dw_mod.im2col_depthwise(x, (3, 3), (1, 1), (1, 1), 1, 1, w[:-1], np.zeros((1, 6, 6, 4), np.float32))
