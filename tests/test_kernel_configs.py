"""The kernel configuration table: which entry each CPU gets, names, overrides."""

from __future__ import annotations

import numpy as np
import pytest

from convbench.kernels import configs
from convbench.kernels.configs import TABLE, KernelConfig, by_name, isa_for, select_config


@pytest.mark.parametrize("features,machine,isa", [
    ({"avx512f", "avx2", "fma"}, "x86_64", "avx512"),
    ({"avx512f"}, "AMD64", "avx512"),
    ({"avx2", "fma"}, "x86_64", "avx2"),          # Zen 3, Haswell..Comet Lake
    ({"avx2"}, "x86_64", "generic"),              # AVX2 without FMA: no FMA tile
    ({"sse2", "sse4.2"}, "x86_64", "generic"),
    (set(), "x86_64", "generic"),
    ({"neon"}, "aarch64", "neon"),
    (set(), "arm64", "neon"),                     # ASIMD is mandatory on aarch64
    (set(), "riscv64", "generic"),
])
def test_table_picks_the_entry_for_the_features(features, machine, isa):
    assert isa_for(frozenset(features), machine) == isa
    assert select_config(frozenset(features), machine) is TABLE[isa]


def test_zen3_keeps_the_5x16_avx2_tile():
    cfg = select_config(frozenset({"avx2", "fma"}), "x86_64")
    assert (cfg.mr, cfg.nr("float32"), cfg.nr("float64"), cfg.kc) == (5, 16, 8, 1024)
    assert cfg.name == "f32-gemm-5x16-avx2"


def test_tiles_fit_the_register_file():
    regs = {"avx512": 32, "avx2": 16, "neon": 32, "generic": 16}
    for isa, cfg in TABLE.items():
        # accumulators + B vectors + one broadcast
        assert cfg.mr * cfg.nr_vectors + cfg.nr_vectors + 1 <= regs[isa], isa
        assert cfg.dw_pixels * cfg.dw_vectors + cfg.dw_vectors <= regs[isa], isa
    for isa, cands in configs.CANDIDATES.items():
        for cfg in cands:  # direct-blocked: an accumulator a pixel and block, a weight vector, a broadcast
            assert cfg.db_pixels * cfg.db_blocks + 2 <= regs[isa], cfg.name


def test_names_are_a_grammar_and_unique():
    names = [c.name for cs in configs.CANDIDATES.values() for c in cs]
    assert TABLE["avx512"].name == "f32-gemm-8x32-avx512"
    assert len(set(names)) == len(set(configs.CANDIDATES["avx512"]) | set(configs.CANDIDATES["avx2"])
                                  | set(configs.CANDIDATES["neon"]) | set(configs.CANDIDATES["generic"]))
    for name in names:
        assert by_name(name).name == name
    with pytest.raises(ValueError, match="Known: .*f32-gemm-5x16-avx2"):
        by_name("f32-gemm-3x3-vax")


def test_nr_follows_dtype():
    cfg = KernelConfig("x", mr=4, nr_vectors=2, vector_bytes=64, kc=256, nc=256, dw_pixels=4,
                       dw_vectors=1)
    assert cfg.nr(np.float32) == 32 and cfg.nr(np.float64) == 16
    assert cfg.dw_channels("float32") == 16


def test_env_var_forces_a_configuration(monkeypatch):
    monkeypatch.setenv(configs.ENV_VAR, "f32-gemm-4x8-generic")
    configs.reset_active_config()
    try:
        info = configs.active_config_info()
        assert info["name"] == "f32-gemm-4x8-generic"
        assert info["source"].startswith("env") and info["tuned"] is False
    finally:
        monkeypatch.delenv(configs.ENV_VAR)
        configs.reset_active_config()
    info = configs.active_config_info()
    assert info["source"] in ("table", "tuned")
    assert {"name", "mr", "nr_f32", "kc", "nc", "compile_cpu", "table_isa"} <= set(info)


def test_named_compile_target_without_features_is_generic(monkeypatch):
    from numba.core import config as nconfig

    monkeypatch.setattr(nconfig, "CPU_NAME", "generic")
    monkeypatch.setattr(nconfig, "CPU_FEATURES", None)
    assert configs.compile_target() == ("generic", frozenset())
    monkeypatch.setattr(nconfig, "CPU_FEATURES", "+avx2,+fma,-avx512f")
    assert configs.compile_target()[1] == frozenset({"avx2", "fma"})
