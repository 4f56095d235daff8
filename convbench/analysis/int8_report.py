"""``convbench reproduce --dtype u8s8``: the paper's claims in 8-bit, and one more claim.

The 8-bit run is ``configs/paper.yaml`` with every layer made ``u8s8``, plus
a channel grid (:func:`crossover_layers`) for a published 8-bit claim the
paper does not make:

4. ONNX Runtime's int8 indirect convolution was found slower than its im2col
   path for layers with fewer than about 32 input channels on CPUs with
   dot-product instructions, and is switched off there (MLAS,
   ``MlasConvSymPackWSize`` in ``convsym.cpp``: "Shallow indirect conv runs
   slower"; the cut-off stated for it is about 32 input channels, one MLAS
   version on ARM64 reads 64).

convbench measures it with its own two algorithms on the same 8-bit
micro-kernel: ``indirect`` against ``im2col-numba`` on a 3x3 layer whose
input channels run over :data:`CROSSOVER_CHANNELS` (everything else fixed),
and judges it by :data:`RULE`. The grid's layers carry the network
:data:`CROSSOVER_NETWORK`; claims 1-3 leave them out, so those are judged
on paper.yaml's layers as in the float run.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .findings import FAILS, HOLDS, MIXED, UNTESTED, Finding, fmt_pct, fmt_speedup, md_table

if TYPE_CHECKING:
    from ..config.expand import Config, Layer

#: The 8-bit dtype reproduce runs.
INT8 = "u8s8"
CROSSOVER_NETWORK = "channel-crossover"
CROSSOVER_CHANNELS = (4, 8, 16, 32, 64, 128)
QUICK_CROSSOVER_CHANNELS = (4, 16, 64)
#: The grid's fixed shape: a 3x3 "same" layer, 64 output channels.
CROSSOVER_SIZE, QUICK_CROSSOVER_SIZE, CROSSOVER_OUT = 28, 14, 64
#: The published cut-off, and how far from it (a factor) a measured crossover still counts as "about".
PUBLISHED_C, ABOUT = 32, 2
REFERENCE = "im2col-numba"

CLAIM = ("ONNX Runtime's int8 indirect convolution is slower than its im2col path for layers with fewer than "
         "about 32 input channels on CPUs with dot-product instructions (ONNX Runtime switches it off there).")
RULE = ("On the channel grid (3x3, padding 1, 64 output channels, only C varies) each C is *faster*, *slower* or a "
        "tie as in claim 1 (speedup t(im2col-numba) / t(indirect), 95% CI). The crossover is the smallest C from "
        f"which indirect is not slower at any larger C. **holds**: a crossover within a factor {ABOUT} of "
        f"{PUBLISHED_C} (C in [{PUBLISHED_C // ABOUT}, {PUBLISHED_C * ABOUT}]) with indirect slower below it; "
        "**does not hold**: indirect is not slower even at the smallest C (no crossover: it never loses), or it "
        "is slower at the largest C (no crossover on the grid); **mixed**: a crossover elsewhere on the grid.")
#: py-cpuinfo / /proc/cpuinfo names of the dot-product instructions the claim is about.
DOT_PRODUCT_FLAGS = ("avx512_vnni", "avx512vnni", "avx_vnni", "avxvnni", "asimddp", "dotprod")


def crossover_layers(quick: bool = False) -> list[Layer]:
    """The channel grid as u8s8 layers (NHWC, as paper.yaml), named ``crossover/c<C>``."""
    from ..config.expand import Layer

    size = QUICK_CROSSOVER_SIZE if quick else CROSSOVER_SIZE
    layers = []
    for c in (QUICK_CROSSOVER_CHANNELS if quick else CROSSOVER_CHANNELS):
        shape = dict(batch=1, in_channels=c, out_channels=CROSSOVER_OUT, height=size, width=size, kernel=(3, 3),
                     stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1), groups=1)
        layers.append(Layer(name=f"crossover/c{c}", network=CROSSOVER_NETWORK, layer_class="3x3", count=1,
                            note="claim 4: indirect against im2col-numba over input channels", shape=shape,
                            layouts=("nhwc",), dtypes=(INT8,)))
    return layers


def int8_config(config: Config, quick: bool = False) -> Config:
    """``config`` (paper.yaml) with every layer u8s8, then the channel grid; the baseline of
    every speedup is ``im2col-numba`` (``im2col`` has no 8-bit GEMM to call: its rows are skipped)."""
    from ..config.expand import Config

    layers = [replace(layer, dtypes=(INT8,)) for layer in config.layers] + crossover_layers(quick)
    model = config.model.model_copy(update={"baseline": REFERENCE, "name": f"{config.name}-{INT8}"})
    return Config(f"{config.name}-{INT8}", config.path, model, layers, config.timing)


def is_crossover(summary: Any) -> Any:
    """The rows of the channel grid (a boolean Series)."""
    import pandas as pd

    if "network" not in summary.columns:
        return pd.Series(False, index=summary.index)
    return summary["network"].astype(str) == CROSSOVER_NETWORK


def is_int8(summary: Any) -> bool:
    """Whether a run's rows are all 8-bit (its report speaks of the 8-bit kernels)."""
    return len(summary) > 0 and set(summary["dtype"].astype(str)) == {INT8}


def dot_product(env: dict[str, Any]) -> str | None:
    """The dot-product instruction flag of the run's CPU, or None."""
    flags = set((env.get("cpu") or {}).get("flags") or [])
    return next((f for f in DOT_PRODUCT_FLAGS if f in flags), None)


def _classify(lo: float, hi: float) -> str:
    if np.isfinite(lo) and lo > 1:
        return "faster"
    if np.isfinite(hi) and hi < 1:
        return "slower"
    return "tie"


def _crossing(t: Any) -> float | None:
    """C where the speedup first rises through 1, interpolated on log C and log speedup."""
    c, s = np.log(t["C"].to_numpy(float)), np.log(t["speedup"].to_numpy(float))
    for i in range(len(c) - 1):
        if s[i] < 0 <= s[i + 1]:
            return float(math.exp(c[i] + (c[i + 1] - c[i]) * (-s[i]) / (s[i + 1] - s[i])))
    return None


def claim_crossover(summary: Any, samples: Any = None, env: dict[str, Any] | None = None) -> Finding:
    """Claim 4 on the grid's rows of ``summary``."""
    from .compare import ratio_table

    grid = summary[is_crossover(summary)]
    t = ratio_table(grid, samples, reference=REFERENCE, algorithms=["indirect"]) if len(grid) else grid
    if len(t):
        t = t[np.isfinite(t["speedup"])].copy()
    if t.empty:
        return Finding(4, REFERENCE, UNTESTED, f"no grid layer has both indirect and {REFERENCE} ok", None)
    t["C"] = t["in_channels"].astype(int)
    t = t.sort_values(["C", "threads"]).drop_duplicates("C").reset_index(drop=True)
    t["result"] = [_classify(lo, hi) for lo, hi in zip(t["ci_low"], t["ci_high"])]
    slower = (t["result"] == "slower").to_numpy()
    later_slower = np.flip(np.logical_or.accumulate(np.flip(slower)))  # slower here or at a larger C
    cross = next((int(c) for c, later in zip(t["C"], later_slower) if not later), None)
    cpu_dot = dot_product(env) if env is not None else None
    none = "not known" if env is None else "none (the claim is about CPUs that have them)"
    if cross is None:
        verdict, where = FAILS, f"indirect is slower up to the largest C ({int(t['C'].max())}): no crossover on the grid"
    elif cross == int(t["C"].min()):
        verdict, where = FAILS, f"indirect is not slower even at C={cross}: no crossover"
    elif PUBLISHED_C / ABOUT <= cross <= PUBLISHED_C * ABOUT:
        verdict, where = HOLDS, f"crossover at C={cross} (indirect slower below it)"
    else:
        verdict, where = MIXED, f"crossover at C={cross}, not about {PUBLISHED_C}"
    at = _crossing(t)
    near = f"; the speedup crosses 1 near C={at:.0f}" if at else ""
    small = t[t["C"] < PUBLISHED_C]
    headline = (f"{where}{near}; speedup at C<{PUBLISHED_C}: "
                f"{', '.join(f'{int(c)}: {fmt_pct(s)}' for c, s in zip(small['C'], small['speedup'])) or '-'}; "
                f"CPU dot-product instructions: {cpu_dot or none}")
    return Finding(4, REFERENCE, verdict, headline, t, {"crossover": cross, "crossing": at, "dot_product": cpu_dot})


def crossover_lines(findings: list[Finding]) -> list[str]:
    """report.md's section on claim 4 (nothing when the run has no channel grid)."""
    f = next((f for f in findings if f.claim == 4), None)
    if f is None:
        return []
    lines = ["## Claim 4 (8-bit): where indirect starts to pay", "", f"> {CLAIM}", "", f"Rule: {RULE}", "",
             f"### Against the same micro-kernel ({REFERENCE}): {f.verdict}", "", f.headline, ""]
    if f.table is None or f.table.empty:
        return lines
    rows = [[int(r["C"]), r["threads"], f"{r['reference_time_s'] * 1e3:.3g}", f"{r['time_s'] * 1e3:.3g}",
             fmt_speedup(r["speedup"], r["ci_low"], r["ci_high"]), r["result"]] for r in f.table.to_dict("records")]
    return lines + md_table(["C", "threads", f"{REFERENCE} (ms)", "indirect (ms)", "indirect faster by [95% CI]",
                              "result"], rows) + [""]
