"""The u8s8 micro-kernels alone (issue 24): the GEMM against numpy's int64 matmul on odd
shapes in every configuration this CPU can run, its requantization against the contract's
float32 formula, the AVX2 path's exactness where vpmaddubsw would saturate, the depthwise
kernel against the exact reference, the configuration table, and the assembly."""

from __future__ import annotations

import re

import numba
import numpy as np
import pytest

from convbench import ConvSpec
from convbench.kernels import configs
from convbench.kernels._qintrinsics import DOT_GENERIC, DOT_MADDWD, DOT_VNNI
from convbench.kernels._parallel import new_work
from convbench.kernels.configs import compile_target
from convbench.kernels.indirection import indirection_buffer
from convbench.kernels.qdepthwise import pack_qdepthwise, qdepthwise
from convbench.kernels.qgemm import PackedQGemm, jobs_for, pack_qweights, qgemm_kernel
from convbench.kernels.quant_configs import (QUANT_CANDIDATES, QUANT_REQUIRES, QUANT_TABLE,
                                             QuantKernelConfig, quant_by_name, quant_isa_for,
                                             quant_runs_on)
from convbench.kernels.requant import MAX_TERMS, correction, multiplier
from convbench.reference import reference

_FEATURES = compile_target()[1]
#: every table entry this CPU can run (LLVM would not compile the others' instructions)
RUNNABLE = [isa for isa in QUANT_TABLE if quant_runs_on(isa, _FEATURES)]


def _contract(acc: np.ndarray, mult: np.ndarray, y_zero: int) -> np.ndarray:
    """The contract's requantization in numpy float32 (convbench.quant)."""
    f = np.rint(acc.astype(np.int32).astype(np.float32) * mult.astype(np.float32)) + np.float32(y_zero)
    return np.clip(f, 0, 255).astype(np.uint8)


def _ab(m: int, k: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (m, k), dtype=np.uint8), rng.integers(-128, 128, (k, n), dtype=np.int8))


# K not a multiple of 4 nor of a tile, M not a multiple of MR, one channel, three channels
SHAPES = [(1, 1, 1), (7, 3, 5), (13, 1, 40), (9, 3, 33), (17, 1030, 40), (2, 255, 65), (25, 64, 32)]


@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_gemm_is_exact_against_numpy_int64(isa, m, k, n):
    a, b = _ab(m, k, n, m * k * n)
    got = PackedQGemm(b, QUANT_TABLE[isa]).raw(a)
    assert got.dtype == np.int32 and got.shape == (m, n)
    np.testing.assert_array_equal(got, a.astype(np.int64) @ b.astype(np.int64))


@pytest.mark.parametrize("isa", RUNNABLE)
def test_largest_products_do_not_saturate(isa):
    """x = 255 against w = -128 and 127 everywhere: every int16 pair sum of vpmaddubsw
    (255*127*2 > 32767) would saturate; the kernels' answers must not."""
    m, k, n = 11, 4 * 37 + 3, 35
    a = np.full((m, k), 255, np.uint8)
    every_third = (np.arange(n) % 3 == 0)[None, :]
    for w, other in ((-128, 127), (127, -128)):
        b = np.where(every_third, other, w).astype(np.int8).repeat(k, axis=0)  # the other extreme too
        np.testing.assert_array_equal(PackedQGemm(b, QUANT_TABLE[isa]).raw(a), a.astype(np.int64) @ b)


@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("scale", [1e-4, 3e-3, 1e3])  # mostly inside the range; saturated both ways
def test_requantization_is_the_contracts_float32_formula(isa, scale):
    m, k, n = 19, 67, 70  # a full and a partial panel on every tile
    a, b = _ab(m, k, n, 7)
    rng = np.random.default_rng(8)
    corr = rng.integers(-200_000, 200_000, n).astype(np.int32)
    mult = (rng.uniform(0.5, 2.0, n) * scale).astype(np.float32)
    y_zero = 131
    got = PackedQGemm(b, QUANT_TABLE[isa])(a, corr, mult, y_zero)
    want = _contract(a.astype(np.int64) @ b + corr, mult, y_zero)
    np.testing.assert_array_equal(got, want)
    if scale > 1:
        assert (got == 0).any() and (got == 255).any()


def test_requantization_rounds_ties_to_even_and_adds_the_zero_point_after():
    """acc * mult exactly k + 0.5: rint to even, then + y_zero (an odd zero point
    would flip the tie if it were added before rounding)."""
    k, n = 4, 32
    a = np.ones((8, k), np.uint8)
    b = np.zeros((k, n), np.int8)
    b[0] = np.arange(n, dtype=np.int8) - 16  # acc = -16 .. 15
    mult = np.full(n, 0.5, np.float32)  # acc * mult = -8, -7.5, ..., 7.5
    got = PackedQGemm(b)(a, np.zeros(n, np.int32), mult, 101)
    want = np.rint(np.arange(-16, 16) * 0.5).astype(int) + 101
    np.testing.assert_array_equal(got[0], want)
    assert got[0, 1] == 101 - 8  # -7.5 -> -8 (even)


def test_gemm_threads_give_the_same_bits():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 numba threads")
    a, b = _ab(301, 129, 97, 3)
    g = PackedQGemm(b)
    corr, mult = np.arange(97, dtype=np.int32), np.full(97, 2e-3, np.float32)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = g(a, corr, mult, 3)
        numba.set_num_threads(2)
        np.testing.assert_array_equal(g(a, corr, mult, 3), one)
    finally:
        numba.set_num_threads(old)


def test_pack_lays_out_quads_and_pads_with_zero_weights():
    cfg = QUANT_TABLE["avx512vnni"]  # NR 32 (packing needs no CPU feature)
    k, cg, r, s = 37, 5, 3, 1
    w = np.random.default_rng(0).integers(-128, 128, (k, cg, r, s), dtype=np.int8)
    p = pack_qweights(w, 1, cfg).reshape(1, 2, r * s, 2, 32, 4)  # (G, panels, T, quads, NR, 4)
    assert p[0, 1, 2, 1, 3, 0] == w[32 + 3, 4, 2, 0]
    assert np.all(p[0, 1, :, :, k - 32:] == 0) and np.all(p[0, :, :, 1, :, 1:] == 0)
    merged = pack_qweights(w, 1, cfg, merge_taps=True).reshape(1, 2, 1, 4, 32, 4)  # 15 channels
    assert merged[0, 0, 0, 1, 7, 3] == w[7, 2, 1, 0]  # (r, s, c) order: channel 7 = tap 1, c 2
    wide = pack_qweights(w, 1, QUANT_TABLE["avx2"]).reshape(1, 3, r * s, 2, 2, 2, 8, 2)
    assert wide.dtype == np.int16 and wide[0, 1, 0, 0, 1, 1, 2, 0] == w[16 + 8 + 2, 1, 0, 0]  # pair (1, 3)


@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("channels,mult_k", [(1, 1), (3, 2), ("tile+vector+3", 1), (64, 1)])
def test_depthwise_matches_the_exact_reference(isa, channels, mult_k):
    """Channels: one, a multiplier, a whole tile, a single vector and a scalar tail after it."""
    cfg = QUANT_TABLE[isa]
    if channels == "tile+vector+3":
        channels = cfg.dw_channels + cfg.vector_bytes // 4 + 3
    spec = ConvSpec(batch=2, in_channels=channels, out_channels=channels * mult_k, height=5,
                    width=cfg.dw_pixels + 2, kernel=3, padding=(1, 0, 2, 1), groups=channels,
                    layout="nhwc", dtype="u8s8")
    x, qw = spec.random_inputs(channels)
    out = np.empty(spec.output_shape, np.uint8)
    qdepthwise(x.reshape(-1), np.full(channels, qw.x_zero, np.uint8), indirection_buffer(spec), 2, x[0].size,
               channels, mult_k, pack_qdepthwise(qw.weight), correction(qw), multiplier(qw), qw.y_zero,
               out.reshape(-1), cfg)
    assert np.max(np.abs(out.astype(int) - reference(spec, x, qw))) <= 1


def test_correction_folds_bias_and_the_zero_point():
    spec = ConvSpec(batch=1, in_channels=3, out_channels=4, height=4, width=4, kernel=2, dtype="u8s8")
    _, qw = spec.random_inputs(0)
    want = qw.bias.astype(np.int64) - qw.x_zero * qw.weight.reshape(4, -1).astype(np.int64).sum(1)
    np.testing.assert_array_equal(correction(qw), want)
    assert MAX_TERMS * 255 * 128 < 2**31 <= (MAX_TERMS + 1) * 255 * 128


# -- the configuration table ------------------------------------------------------------

@pytest.mark.parametrize("features,isa", [
    ({"avx512f", "avx512vnni", "avx512vl", "avx512bw", "avx2"}, "avx512vnni"),  # Zen 4, Ice Lake
    ({"avxvnni", "avx2"}, "avxvnni"),                                           # Alder Lake
    ({"avx512f", "avx512bw", "avx2"}, "avx512bw"),                              # Skylake-X
    ({"avx2", "fma"}, "avx2"),                                                  # Zen 3
    ({"sse2"}, "generic"), (set(), "generic"),
])
def test_table_picks_the_instruction_the_cpu_has(features, isa):
    assert quant_isa_for(frozenset(features)) == isa


def test_no_configuration_is_handed_to_a_cpu_without_its_instruction():
    """Whatever subset of the features a CPU has, the table's pick runs on it."""
    every = sorted(set().union(*(n for needs in QUANT_REQUIRES.values() for n in needs)))
    rng = np.random.default_rng(0)
    for _ in range(200):
        feats = frozenset(f for f in every if rng.random() < 0.5)
        assert quant_runs_on(quant_isa_for(feats), feats), sorted(feats)
    assert not quant_runs_on("avx512vnni", frozenset({"avx2", "avx512f"}))
    assert not quant_runs_on("avxvnni", frozenset({"avx512vnni"}))  # ymm EVEX needs VL too


def test_dot_kinds_and_names_are_a_grammar():
    assert [QUANT_TABLE[i].dot for i in ("avx512vnni", "avxvnni", "avx512bw", "avx2", "generic")] == \
        [DOT_VNNI, DOT_VNNI, DOT_MADDWD, DOT_MADDWD, DOT_GENERIC]
    assert QUANT_TABLE["avx512vnni"].name == "u8s8-gemm-8x32c4-avx512vnni"
    names = [c.name for cs in QUANT_CANDIDATES.values() for c in cs]
    assert len(names) == len(set(names)) and all(quant_by_name(n).name == n for n in names)
    with pytest.raises(ValueError, match="Known: .*u8s8-gemm-4x16c4-avx2"):
        quant_by_name("u8s8-gemm-1x1c4-vax")
    regs = {"avx512vnni": 32, "avx512bw": 32, "avxvnni": 16, "avx2": 16, "generic": 16}
    for isa, cfg in QUANT_TABLE.items():
        assert cfg.mr * cfg.nr_vectors + cfg.nr_vectors + 1 <= regs[isa], isa


@pytest.fixture
def env_config(monkeypatch):
    def force(value: str) -> None:
        monkeypatch.setenv(configs.ENV_VAR, value)
        configs.reset_active_config()

    yield force
    monkeypatch.delenv(configs.ENV_VAR, raising=False)
    configs.reset_active_config()


def test_env_var_forces_the_u8s8_configuration_alone_or_beside_the_float_one(env_config):
    env_config("u8s8-gemm-4x8c4-generic")
    info = configs.active_config_info()
    assert info["u8s8"]["name"] == "u8s8-gemm-4x8c4-generic" and info["u8s8"]["source"].startswith("env")
    assert info["source"] in ("table", "tuned")  # the float tile is left alone
    assert qgemm_kernel().config == QUANT_TABLE["generic"]
    env_config("f32-gemm-4x8-generic, u8s8-gemm-4x8c4-generic")
    assert configs.active_config().name == "f32-gemm-4x8-generic"
    assert configs.active_quant_config().name == "u8s8-gemm-4x8c4-generic"


def test_env_var_refuses_a_configuration_the_cpu_cannot_run(env_config, monkeypatch):
    monkeypatch.setattr(configs, "compile_target", lambda: ("x86-64", frozenset({"sse2", "avx2"})))
    env_config(QUANT_TABLE["avx512vnni"].name)
    with pytest.raises(ValueError, match="needs avx512f\\+avx512vnni; numba's compile target has none"):
        configs.active_quant_config()
    env_config("")
    assert configs.active_quant_config() == QUANT_TABLE["avx2"]


def test_a_tuned_choice_the_cpu_cannot_run_is_ignored(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(configs.ENV_VAR, raising=False)
    path = configs.cache_file()
    path.parent.mkdir(parents=True)
    fake = QuantKernelConfig("avx512vnni", 8, 2, 64, 128, 1, 4, 2)  # not a candidate: unknown name
    path.write_text(json.dumps({configs.cpu_key() + configs.QUANT_KEY_SUFFIX: {"name": fake.name}}))
    configs.reset_active_config()
    try:
        assert configs.active_quant_config_info()["source"] == "table"
        path.write_text(json.dumps({configs.cpu_key() + configs.QUANT_KEY_SUFFIX:
                                    {"name": QUANT_TABLE["generic"].name}}))
        configs.reset_active_config()
        assert configs.active_quant_config_info() == {**QUANT_TABLE["generic"].as_dict(), "source": "tuned"}
    finally:
        configs.reset_active_config()


def test_tune_chooses_and_caches_the_u8s8_tile(tmp_path, monkeypatch):
    from convbench.kernels import tune

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(configs.ENV_VAR, raising=False)
    monkeypatch.setattr(tune, "CANDIDATES", {k: v[:1] for k, v in configs.CANDIDATES.items()})
    monkeypatch.setattr(tune, "WORKLOAD", [("1x1 5x5 16->40", 5, 16, 40, 1)])
    monkeypatch.setattr(tune, "QUANT_CANDIDATES", {k: v[:2] for k, v in QUANT_CANDIDATES.items()})
    monkeypatch.setattr(tune, "QUANT_WORKLOAD", [("3x3 6x6 5->40", 6, 5, 40, 9), ("1x1 5x5 16->40", 5, 16, 40, 1)])
    configs.reset_active_config()
    try:
        result = tune.tune(0.05)
        q = result.quant
        names = {c.name for c in QUANT_CANDIDATES[quant_isa_for(_FEATURES)][:2]}
        assert set(q.relative) == names and q.relative[q.default] == pytest.approx(1.0)
        assert configs.active_quant_config_info() == {**quant_by_name(q.chosen).as_dict(), "source": "tuned"}
        assert tune.clear() is True and configs.active_quant_config_info()["source"] == "table"
    finally:
        configs.reset_active_config()


# -- the assembly --------------------------------------------------------------------------

def _asm(cfg: QuantKernelConfig) -> str:
    kern = qgemm_kernel(cfg)
    k = 16
    a = np.ones(cfg.mr * k, np.uint8)
    offs = (np.arange(cfg.mr, dtype=np.int64) * k).reshape(cfg.mr, 1)
    b = kern.pack(np.ones((cfg.nr, k, 1, 1), np.int8), 1)
    out = np.zeros(cfg.mr * cfg.nr, np.uint8)
    # numba cannot show the assembly of cached code: compile an uncached twin
    twin = numba.njit(nogil=True)(jobs_for(cfg).py_func)
    twin(new_work(1, 1), a, a, offs, 1, 0, 1, k, cfg.nr, b, np.zeros(cfg.nr, np.int32),
         np.ones(cfg.nr, np.float32), 0, 1, out, np.zeros(0, np.int32))
    assert np.all(out == k)
    return twin.inspect_asm(twin.signatures[0])


@pytest.mark.skipif("avx512vnni" not in RUNNABLE, reason="this CPU has no AVX-512 VNNI")
def test_vnni_inner_loop_is_vpdpbusd_on_registers():
    """Per quad the 8x32 tile is 8 broadcasts and 16 zmm vpdpbusd into accumulators
    that stay in registers (no accumulator loads or stores in the loop)."""
    asm = _asm(QUANT_TABLE["avx512vnni"])
    dots = re.findall(r"vpdpbusd\s+(\S+), (\S+), (\S+)", asm)
    assert len(dots) >= 16
    assert all(d[2].startswith("%zmm") and d[1].startswith("%zmm") for d in dots)
    assert not re.search(r"vpdpbusd\s+[^\n]*\(%rsp\)", asm)  # no accumulator on the stack


# -- other CPUs, as numba's compile target ----------------------------------------------------

OTHER_CPU = r'''
import json
import numpy as np
from convbench import ConvSpec
from convbench.kernels.configs import active_quant_config, compile_target
from convbench.kernels.qgemm import PackedQGemm
import convbench
from convbench.quant import max_abs_err_lsb
from convbench.reference import reference

rng = np.random.default_rng(0)
a = rng.integers(0, 256, (13, 67), dtype=np.uint8)
b = rng.integers(-128, 128, (67, 37), dtype=np.int8)
b[:, ::2] = -128
a[::2] = 255
exact = bool(np.array_equal(PackedQGemm(b).raw(a), a.astype(np.int64) @ b))
spec = ConvSpec(batch=2, in_channels=5, out_channels=5, height=6, width=7, kernel=3, padding=1, groups=5,
                layout="nhwc", dtype="u8s8")
x, qw = spec.random_inputs(0)
dw = max_abs_err_lsb(convbench.get_algorithm("indirect").prepare(spec, qw)(x), reference(spec, x, qw))
print("RESULT " + json.dumps({"config": active_quant_config().name, "features": sorted(compile_target()[1]),
                              "exact": exact, "dw": dw}))
'''


@pytest.mark.parametrize("cpu,features,isa", [
    ("haswell", "+avx2,+fma,+avx,+sse4.2,+popcnt,+f16c,+bmi,+bmi2", "avx2"),  # vpmaddwd, no VNNI to fuse into
    ("x86-64", None, "generic"),                                              # SSE2: the portable kernels
])
def test_the_table_and_the_kernels_on_another_compile_target(tmp_path, cpu, features, isa):
    """numba compiling for an older CPU (NUMBA_CPU_NAME/FEATURES) gets that CPU's u8s8
    configuration, whose kernels compile for it and are exact."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_DISABLE_JIT", "CONVBENCH_KERNEL_CONFIG")}
    env.update(NUMBA_CPU_NAME=cpu, NUMBA_CACHE_DIR=str(tmp_path), XDG_CACHE_HOME=str(tmp_path),
               PYTHONPATH=os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    if features:
        env["NUMBA_CPU_FEATURES"] = features
    proc = subprocess.run([sys.executable, "-c", OTHER_CPU], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))[7:])
    assert got["config"] == QUANT_TABLE[isa].name and got["exact"] and got["dw"] <= 1, got
