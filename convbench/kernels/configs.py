"""Kernel configurations per machine: the one place tiles and blocking live.

XNNPACK's ``src/configs/`` idea: operators (``convbench/algorithms/``) ask
for the configured kernel and never hard-code a tile; this module maps what
the CPU offers to a :class:`KernelConfig` — the GEMM micro-kernel's tile
(MR rows x NR columns, NR = ``nr_vectors`` SIMD vectors of
``vector_bytes``), the cache blocking (KC reduction elements, NC output
channels per block) and the depthwise tile (``dw_pixels`` x ``dw_vectors``
vectors). Every algorithm that shares a kernel gets the same tile
(``indirect`` and ``im2col-numba`` both run :mod:`convbench.kernels.gemm`).

The u8s8 kernels have a table of their own (:data:`QUANT_TABLE`: VNNI
``vpdpbusd`` on zmm or ymm, AVX2 ``vpmaddwd``, generic), chosen by the same
rules; a u8s8 configuration is only ever given to a CPU that has its
instruction (:data:`QUANT_REQUIRES`).

Which configuration runs, in order:

1. ``CONVBENCH_KERNEL_CONFIG=<name>`` in the environment (any entry of
   :data:`CANDIDATES`, e.g. to measure a non-native tile; a u8s8 name from
   :data:`QUANT_CANDIDATES`, alone or after a comma, forces the u8s8 one);
2. the choice ``convbench tune`` (:mod:`convbench.kernels.tune`) cached
   for this CPU model, read here (:func:`cached_choice`);
3. the table's default for the features numba compiles for
   (:func:`select_config`).

:func:`active_config_info` says which one ran and why; ``convbench info``
and every ``env.json`` include it.

The features are those of numba's compile target: the host's, as llvmlite
reports them, unless ``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES`` override it
(then a portable cache gets a portable tile).
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .quant_configs import (QUANT_CANDIDATES, QUANT_REQUIRES, QUANT_TABLE,  # noqa: F401
                            QuantKernelConfig, quant_by_name, quant_isa_for, quant_runs_on)

#: Environment variable that forces a configuration by name.
ENV_VAR = "CONVBENCH_KERNEL_CONFIG"


@dataclass(frozen=True)
class KernelConfig:
    """Tile and blocking of the numba micro-kernels on one kind of CPU.

    ``nr(dtype)`` columns per tile row: ``nr_vectors`` registers of
    ``vector_bytes``, so float64 tiles have half the columns of float32
    ones. The accumulators (``mr * nr_vectors`` registers) plus the B
    vectors and one broadcast must fit the register file, or LLVM spills.
    """

    isa: str  #: "avx512", "avx2", "neon" or "generic"
    mr: int  #: output pixels (rows of A) per GEMM tile
    nr_vectors: int  #: SIMD vectors per tile row
    vector_bytes: int  #: 64 (zmm), 32 (ymm), 16 (xmm / NEON q)
    kc: int  #: reduction elements per cache block (A tile MR x KC in L1)
    nc: int  #: output channels per cache block (KC x NC of packed B in L2)
    dw_pixels: int  #: depthwise: output pixels per tile
    dw_vectors: int  #: depthwise: channel vectors per tile
    #: direct-blocked: output pixels per register tile (``db_blocks`` accumulator vectors
    #: each, plus a weight vector and a broadcast); ``convbench tune`` times the candidates' values
    db_pixels: int = 8
    #: direct-blocked: output channel blocks (vectors) per register tile
    db_blocks: int = 1

    def nr(self, dtype: np.dtype | str = "float32") -> int:
        """Columns of the GEMM tile for ``dtype``."""
        return self.nr_vectors * self.vector_bytes // np.dtype(dtype).itemsize

    def dw_channels(self, dtype: np.dtype | str = "float32") -> int:
        """Channels of the depthwise tile for ``dtype``."""
        return self.dw_vectors * self.vector_bytes // np.dtype(dtype).itemsize

    @property
    def name(self) -> str:
        """XNNPACK-style kernel name, e.g. ``f32-gemm-8x32-avx512``; a
        blocking other than the ISA's default is appended (``-kc512``)."""
        base = f"f32-gemm-{self.mr}x{self.nr()}-{self.isa}"
        default = TABLE.get(self.isa)
        if default is not None and replace(default, mr=self.mr, nr_vectors=self.nr_vectors,
                                           db_pixels=self.db_pixels, db_blocks=self.db_blocks) != self:
            base += f"-kc{self.kc}-nc{self.nc}-dw{self.dw_pixels}x{self.dw_channels()}"
        if default is not None and (self.db_pixels, self.db_blocks) != (default.db_pixels, default.db_blocks):
            # direct-blocked's register tile: pixels, and output blocks where more than one
            base += f"-db{self.db_pixels}" + (f"x{self.db_blocks}" if self.db_blocks > 1 else "")
        return base

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **asdict(self), "nr_f32": self.nr("float32"),
                "nr_f64": self.nr("float64")}


#: The table: one default per instruction set.
TABLE: dict[str, KernelConfig] = {
    # 32 zmm registers: 8x32 float32 = 16 accumulators + 2 B vectors + a
    # broadcast. On the 2-vCPU Cascade Lake VM it beat the AVX2 5x16 tile
    # (1.71x at 1024^3 then; on the Zen 4 VM 1.01x, undecided: see README); 12x32 was not faster.
    # KC 512: the 8 x KC A rows (16 KiB) stay in the 32 KiB L1. NC 128: the
    # GEMM's jobs are tiles x NC blocks, so more blocks give two threads work
    # to share on small layers; measured there (interleaved, 64-byte-aligned
    # panels) against NC 256: 0.96-1.00x the time on one thread, 0.85-0.91x
    # on two for 784x256x256 and 196x2304x256.
    "avx512": KernelConfig("avx512", mr=8, nr_vectors=2, vector_bytes=64, kc=512, nc=128,
                           dw_pixels=4, dw_vectors=2, db_pixels=14),
    # 16 ymm registers: 5x16 = 10 accumulators + 2 B + broadcasts (6x16
    # spills); measured fastest on Zen 3, KC 1024 a few percent ahead of 256/512.
    # direct-blocked 3 pixels x 4 blocks (oneDNN's jit:avx2 tile): AVX2 FMAs take no broadcast
    # operand, so a tile of one block pays a broadcast a multiply-add; on the Zen 1 VM (EPYC
    # family 23 model 1) 3x4 ran ResNet-50's 3x3 layers 1.3-1.5x faster than 6x1.
    "avx2": KernelConfig("avx2", mr=5, nr_vectors=2, vector_bytes=32, kc=1024, nc=256,
                         dw_pixels=4, dw_vectors=2, db_pixels=3, db_blocks=4),
    # aarch64 ASIMD, 32 q registers: XNNPACK's default f32 GEMM tile there is
    # 6x8 (neonfma); not measured here (no ARM machine).
    "neon": KernelConfig("neon", mr=6, nr_vectors=2, vector_bytes=16, kc=512, nc=256,
                         dw_pixels=4, dw_vectors=2),
    # Anything else (SSE2-only x86, unknown): 4x8 float32 in 8 of 16 xmm.
    "generic": KernelConfig("generic", mr=4, nr_vectors=2, vector_bytes=16, kc=512, nc=256,
                            dw_pixels=4, dw_vectors=2),
}

#: Configurations ``convbench tune`` may choose from and ``CONVBENCH_KERNEL_CONFIG``
#: may name: the table plus variants of tile and blocking per ISA.
CANDIDATES: dict[str, list[KernelConfig]] = {
    "avx512": [TABLE["avx512"],
               replace(TABLE["avx512"], kc=1024),
               replace(TABLE["avx512"], mr=12),
               replace(TABLE["avx512"], mr=6),
               TABLE["avx2"],
               # direct-blocked's tile: 8 or 20 accumulators instead of 14 (of 32 zmm)
               replace(TABLE["avx512"], db_pixels=8), replace(TABLE["avx512"], db_pixels=20)],
    "avx2": [TABLE["avx2"], replace(TABLE["avx2"], kc=512), replace(TABLE["avx2"], mr=4),
             replace(TABLE["avx2"], mr=6, nr_vectors=1),
             # direct-blocked's tile: 4x3 or 6x2 (12 accumulators, as 3x4), or one block (the old 6x1)
             replace(TABLE["avx2"], db_pixels=4, db_blocks=3), replace(TABLE["avx2"], db_pixels=6, db_blocks=2),
             replace(TABLE["avx2"], db_pixels=6, db_blocks=1)],
    "neon": [TABLE["neon"], replace(TABLE["neon"], mr=4, nr_vectors=4),
             replace(TABLE["neon"], mr=8)],
    "generic": [TABLE["generic"]],
}


def isa_for(features: set[str] | frozenset[str], machine: str) -> str:
    """The instruction-set key of :data:`TABLE` for CPU ``features`` (LLVM
    names: ``avx512f``, ``avx2``, ``fma``, ``neon``) on ``machine`` (``platform.machine()``)."""
    machine = machine.lower()
    if machine in ("aarch64", "arm64") or "neon" in features or "asimd" in features:
        return "neon"
    if "avx512f" in features:
        return "avx512"
    if "avx2" in features and "fma" in features:
        return "avx2"
    return "generic"


def select_config(features: set[str] | frozenset[str], machine: str) -> KernelConfig:
    """The table's configuration for ``features`` on ``machine`` (pure function)."""
    return TABLE[isa_for(features, machine)]


def compile_target() -> tuple[str, frozenset[str]]:
    """The CPU name and features numba compiles for (host unless overridden)."""
    import llvmlite.binding as llvm
    from numba.core import config as nconfig

    name = nconfig.CPU_NAME or llvm.get_host_cpu_name()
    if nconfig.CPU_FEATURES is not None:
        feats = {f[1:] for f in nconfig.CPU_FEATURES.split(",") if f.startswith("+")}
    elif nconfig.CPU_NAME and nconfig.CPU_NAME != "host":
        feats = set()  # a named generic target without explicit features: assume none
    else:
        feats = {k for k, v in llvm.get_host_cpu_features().items() if v}
    return name, frozenset(feats)


def by_name(name: str) -> KernelConfig:
    """The candidate configuration called ``name`` (a :attr:`KernelConfig.name`)."""
    for configs in CANDIDATES.values():
        for cfg in configs:
            if cfg.name == name:
                return cfg
    known = sorted({c.name for cs in CANDIDATES.values() for c in cs})
    raise ValueError(f"Unknown kernel configuration {name!r}. Known: {', '.join(known)}.")


# -- the tuned choice (written by convbench.kernels.tune) ----------------------

#: Cache file name inside the cache folder.
CACHE_NAME = "kernel-config.json"


def cache_dir() -> Path:
    """The user's cache folder for convbench (no platformdirs needed)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "convbench"


def cache_file() -> Path:
    """Where ``convbench tune`` keeps its choices (one entry per :func:`cpu_key`)."""
    return cache_dir() / CACHE_NAME


def cpu_key() -> str:
    """What a cached choice is valid for: the CPU model, numba's compile
    target and its features (a different CPU or target gets its own entry)."""
    model = cpu_model()
    name, feats = compile_target()
    return f"{model} | {name} | {isa_for(feats, platform.machine())}"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def read_tuned_cache() -> dict[str, Any]:
    """The whole cache file (every CPU's entry); empty when missing or unreadable."""
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_tuned_cache(data: dict[str, Any]) -> None:
    """Replace the cache file with ``data`` atomically (a concurrent reader sees the old
    or the new file). ``tune``'s tiles, its grain and its BLAS split all write through here."""
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def tuned_entry(suffix: str) -> dict[str, Any] | None:
    """This CPU's entry under ``cpu_key() + suffix``, or ``None`` (missing, or not a mapping)."""
    entry = read_tuned_cache().get(cpu_key() + suffix)
    return entry if isinstance(entry, dict) else None


def save_tuned_entry(suffix: str, entry: dict[str, Any]) -> None:
    """Cache ``entry`` for this CPU under ``cpu_key() + suffix`` (the grain's, the BLAS split's)."""
    data = read_tuned_cache()
    data[cpu_key() + suffix] = entry
    write_tuned_cache(data)


def forget_tuned_entry(suffix: str) -> bool:
    """Drop this CPU's entry under ``cpu_key() + suffix``; True if there was one."""
    data = read_tuned_cache()
    if data.pop(cpu_key() + suffix, None) is None:
        return False
    write_tuned_cache(data)
    return True


def cached_choice() -> KernelConfig | None:
    """The configuration ``tune`` chose for this CPU, or ``None``."""
    entry = read_tuned_cache().get(cpu_key())
    if not isinstance(entry, dict):
        return None
    try:
        return by_name(str(entry.get("name")))
    except ValueError:  # a name from another convbench version: ignore it
        return None


_active: tuple[KernelConfig, str] | None = None
_active_quant: tuple[QuantKernelConfig, str] | None = None


def _forced() -> tuple[str | None, str | None]:
    """``CONVBENCH_KERNEL_CONFIG`` split into its float and its u8s8 name (comma-separated, any order)."""
    f32 = u8 = None
    for name in filter(None, (n.strip() for n in os.environ.get(ENV_VAR, "").split(","))):
        if name.startswith("u8s8-"):
            u8 = name
        else:
            f32 = name
    return f32, u8


def _resolve() -> tuple[KernelConfig, str]:
    forced = _forced()[0]
    if forced:
        return by_name(forced), f"env {ENV_VAR}"
    tuned = cached_choice()
    if tuned is not None:
        return tuned, "tuned"
    _, feats = compile_target()
    return select_config(feats, platform.machine()), "table"


def active_config() -> KernelConfig:
    """The configuration the kernels use in this process (resolved once)."""
    global _active
    if _active is None:
        _active = _resolve()
    return _active[0]


def reset_active_config() -> None:
    """Forget the resolved configurations (after ``tune`` or in tests)."""
    global _active, _active_quant
    _active = _active_quant = None


#: Suffix of the tuned u8s8 choice's key in the cache file (after :func:`cpu_key`).
QUANT_KEY_SUFFIX = " | u8s8"


def _resolve_quant() -> tuple[QuantKernelConfig, str]:
    _, feats = compile_target()
    forced = _forced()[1]
    if forced:
        cfg, source = quant_by_name(forced), f"env {ENV_VAR}"
        if not quant_runs_on(cfg.isa, feats):
            need = " or ".join("+".join(sorted(n)) for n in QUANT_REQUIRES[cfg.isa])
            raise ValueError(f"{ENV_VAR} names {cfg.name}, which needs {need}; numba's compile "
                             f"target has none of that (its kernels would not compile for this CPU).")
        return cfg, source
    entry = read_tuned_cache().get(cpu_key() + QUANT_KEY_SUFFIX)
    if isinstance(entry, dict):
        try:
            cfg = quant_by_name(str(entry.get("name")))
            if quant_runs_on(cfg.isa, feats):
                return cfg, "tuned"
        except ValueError:  # a name from another convbench version: ignore it
            pass
    return QUANT_TABLE[quant_isa_for(feats)], "table"


def active_quant_config() -> QuantKernelConfig:
    """The u8s8 configuration of this process: forced, tuned or the table's (resolved once)."""
    global _active_quant
    if _active_quant is None:
        _active_quant = _resolve_quant()
    return _active_quant[0]


def active_quant_config_info() -> dict[str, Any]:
    """The u8s8 configuration and where it came from (``table``, ``tuned``, ``env ...``)."""
    cfg = active_quant_config()
    assert _active_quant is not None
    return {**cfg.as_dict(), "source": _active_quant[1]}


def active_config_info() -> dict[str, Any]:
    """What ``env.json`` and ``convbench info`` record: the configuration,
    where it came from (``table``, ``tuned``, ``env ...``) and the target."""
    cfg = active_config()
    assert _active is not None
    cpu, feats = compile_target()
    return {**cfg.as_dict(), "source": _active[1], "tuned": _active[1] == "tuned",
            "compile_cpu": cpu, "table_isa": isa_for(feats, platform.machine()),
            "u8s8": active_quant_config_info()}
