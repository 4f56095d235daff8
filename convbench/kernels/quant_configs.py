"""The u8s8 (8-bit) kernel configurations: tiles per dot-product instruction.

The 8-bit half of :mod:`.configs` (which resolves the active one, from the
environment, ``convbench tune``'s cache or this table, exactly as it does
the float tile): :data:`QUANT_TABLE` maps the instruction a CPU offers to
the u8s8 GEMM tile (:mod:`.qgemm`) and depthwise tile (:mod:`.qdepthwise`),
and :data:`QUANT_REQUIRES` says which CPU features each needs: a kernel is
never compiled for a CPU without its instruction (LLVM would refuse, or the
CPU would fault). Pure data and pure functions; no imports of convbench.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class QuantKernelConfig:
    """Tile and blocking of the u8s8 kernels (:mod:`.qgemm`, :mod:`.qdepthwise`).

    The GEMM tile is ``mr`` rows x ``nr`` int32 columns, ``nr = nr_vectors *
    vector_bytes / 4``, reduced four u8 x s8 products (one "quad") at a time
    (XNNPACK's ``c4``). ``isa`` names the dot-product instruction (see
    :data:`QUANT_REQUIRES`); a CPU without it is never given the config.
    """

    isa: str  #: "avx512vnni", "avxvnni", "avx512bw", "avx2" or "generic"
    mr: int  #: output pixels per GEMM tile
    nr_vectors: int  #: int32 vectors per tile row
    vector_bytes: int  #: 64 (zmm), 32 (ymm), 16 (xmm)
    nc: int  #: most output channels per cache block of packed weights
    block_bytes: int  #: most bytes of packed weights per block (kept in L2 across tiles)
    dw_pixels: int  #: depthwise: output pixels per tile
    dw_vectors: int  #: depthwise: int32 channel vectors per tile

    @property
    def nr(self) -> int:
        """Output channels (int32 columns) of the GEMM tile."""
        return self.nr_vectors * self.vector_bytes // 4

    @property
    def dw_channels(self) -> int:
        """Channels of the depthwise tile."""
        return self.dw_vectors * self.vector_bytes // 4

    @property
    def dot(self) -> int:
        """The :mod:`._qintrinsics` dot-product kind (``DOT_VNNI``, ``DOT_MADDWD``, ``DOT_GENERIC``)."""
        return {"avx512vnni": 1, "avxvnni": 1, "avx512bw": 2, "avx2": 2}.get(self.isa, 0)

    @property
    def name(self) -> str:
        """XNNPACK-style, e.g. ``u8s8-gemm-8x32c4-avx512vnni``; a blocking other than the ISA's default is appended."""
        base = f"u8s8-gemm-{self.mr}x{self.nr}c4-{self.isa}"
        default = QUANT_TABLE.get(self.isa)
        if default is not None and replace(default, mr=self.mr, nr_vectors=self.nr_vectors) != self:
            base += f"-nc{self.nc}-dw{self.dw_pixels}x{self.dw_channels}"
        return base

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **asdict(self), "nr": self.nr}


#: CPU features (LLVM names) each u8s8 ISA needs; any one of the sets will do.
QUANT_REQUIRES: dict[str, tuple[frozenset[str], ...]] = {
    "avx512vnni": (frozenset({"avx512f", "avx512vnni"}),),
    # the ymm vpdpbusd: VEX-encoded on AVX-VNNI CPUs, EVEX with AVX512-VNNI + VL
    "avxvnni": (frozenset({"avxvnni"}), frozenset({"avx512vnni", "avx512vl"})),
    "avx512bw": (frozenset({"avx512f", "avx512bw"}),),
    "avx2": (frozenset({"avx2"}),),
    "generic": (frozenset(),),
}

#: One default u8s8 configuration per ISA, in order of preference.
QUANT_TABLE: dict[str, QuantKernelConfig] = {
    # 32 zmm: 8x32 = 16 accumulators + 2 weight vectors + a broadcast; one
    # vpdpbusd a cycle on Zen 4 (457 GOP/s measured) needs 5+ chains in flight;
    # 8x32 reached 420 GOP/s at 1024^3 there, 12x32 and 6x48 were not faster on
    # layers. Depthwise 8 pixels x 32 channels: 5-10% ahead of 4x32, 4x64 and 2x64
    "avx512vnni": QuantKernelConfig("avx512vnni", mr=8, nr_vectors=2, vector_bytes=64, nc=128,
                                    block_bytes=512 * 1024, dw_pixels=8, dw_vectors=2),
    # 16 ymm (AVX-VNNI CPUs have no AVX-512): 6x16 = 12 accumulators + 2 + 1
    "avxvnni": QuantKernelConfig("avxvnni", mr=6, nr_vectors=2, vector_bytes=32, nc=128,
                                 block_bytes=256 * 1024, dw_pixels=4, dw_vectors=2),
    # AVX-512 without VNNI (Skylake-X): vpmaddwd on zmm, 8x32 = 16 accumulators of 32
    "avx512bw": QuantKernelConfig("avx512bw", mr=8, nr_vectors=2, vector_bytes=64, nc=128,
                                  block_bytes=512 * 1024, dw_pixels=8, dw_vectors=2),
    # vpmaddwd needs a product register before the add: 4x16 = 8 accumulators; on
    # Zen 4 under a Haswell target 4x16 was ahead of 3x16, 2x24, 4x24, 3x32 and even with 6x16
    "avx2": QuantKernelConfig("avx2", mr=4, nr_vectors=2, vector_bytes=32, nc=128,
                              block_bytes=256 * 1024, dw_pixels=4, dw_vectors=2),
    "generic": QuantKernelConfig("generic", mr=4, nr_vectors=2, vector_bytes=16, nc=128,
                                 block_bytes=256 * 1024, dw_pixels=4, dw_vectors=2),
}

#: u8s8 configurations ``tune`` may choose from and ``CONVBENCH_KERNEL_CONFIG`` may name.
QUANT_CANDIDATES: dict[str, list[QuantKernelConfig]] = {
    "avx512vnni": [QUANT_TABLE["avx512vnni"], replace(QUANT_TABLE["avx512vnni"], mr=12),
                   replace(QUANT_TABLE["avx512vnni"], mr=6, nr_vectors=3),
                   replace(QUANT_TABLE["avx512vnni"], nc=256)],
    "avxvnni": [QUANT_TABLE["avxvnni"], replace(QUANT_TABLE["avxvnni"], mr=4)],
    "avx512bw": [QUANT_TABLE["avx512bw"], replace(QUANT_TABLE["avx512bw"], mr=6)],
    "avx2": [QUANT_TABLE["avx2"], replace(QUANT_TABLE["avx2"], mr=6), replace(QUANT_TABLE["avx2"], mr=3)],
    "generic": [QUANT_TABLE["generic"]],
}


def quant_runs_on(isa: str, features: set[str] | frozenset[str]) -> bool:
    """Whether a CPU with ``features`` can run the u8s8 kernels of ``isa``."""
    return any(need <= features for need in QUANT_REQUIRES[isa])


def quant_isa_for(features: set[str] | frozenset[str]) -> str:
    """The preferred u8s8 ISA the features allow (pure function)."""
    return next(isa for isa in QUANT_TABLE if quant_runs_on(isa, features))


def quant_by_name(name: str) -> QuantKernelConfig:
    """The u8s8 candidate called ``name``."""
    for cfgs in QUANT_CANDIDATES.values():
        for cfg in cfgs:
            if cfg.name == name:
                return cfg
    known = sorted({c.name for cs in QUANT_CANDIDATES.values() for c in cs})
    raise ValueError(f"Unknown u8s8 kernel configuration {name!r}. Known: {', '.join(known)}.")
