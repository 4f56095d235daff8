"""The zoo per layer class: the pairs the paper compares, judged on every layer of nine networks.

For each pair of :data:`PAIRS` (indirect convolution, Winograd and FFT, each
against im2col on the machine's BLAS and against im2col on the same numba
micro-kernel), :func:`pair_speedups` gives one row per layer variant where
both ran ``ok``: the speedup t(reference) / t(algorithm) with its 95%
bootstrap interval (:func:`convbench.analysis.compare.ratio_table`, the
interval the paper's report uses), the result (``faster`` when the interval
lies above 1, ``slower`` below, else ``tie``), and what the layer is: its
class, input channels per group ``C``, output pixels and arithmetic
intensity (direct-equivalent FLOPs per byte of input, weights and output,
the compulsory traffic of any algorithm). Every distinct shape is one point,
whatever its count: the question is per layer, not per network.

:func:`class_verdicts` sums them per class (:data:`CLASS_RULE`), and
:func:`trends` says how the speedup moves with ``C``, output size and
intensity (Spearman rank correlations over the pair's layers).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..results.schema import specs_of
from ..timing import geomean

#: (algorithm, reference) pairs, the paper's method's reference (im2col-numba) beside the BLAS one.
PAIRS = (("indirect", "im2col-numba"), ("indirect", "im2col"), ("winograd", "im2col-numba"),
         ("winograd", "im2col"), ("winograd-f4", "im2col-numba"), ("winograd-f4", "im2col"),
         ("fft", "im2col-numba"), ("fft", "im2col"))
CLASS_RULE = ("Per layer, the speedup t(reference) / t(algorithm) is *faster* when its 95% CI lies above 1, "
              "*slower* when below, else a tie. Per class: **wins** when faster on at least 2/3 of the layers "
              "and slower on none; **loses** when slower on at least 2/3 and faster on none; **mixed** "
              "otherwise. Every verdict gives its count of layers; a class of fewer than 3 layers is a "
              "verdict on those layers only.")
#: What :func:`trends` relates the speedup to.
TREND_COLUMNS = {"C": "input channels per group", "out_pixels": "output pixels", "intensity": "FLOP per byte"}


def pair_label(algorithm: str, reference: str) -> str:
    """``indirect vs im2col-numba``."""
    return f"{algorithm} vs {reference}"


def _result(lo: float, hi: float) -> str:
    if np.isfinite(lo) and lo > 1:
        return "faster"
    if np.isfinite(hi) and hi < 1:
        return "slower"
    return "tie"


def pair_speedups(summary: Any, samples: Any = None, pairs: tuple[tuple[str, str], ...] = PAIRS) -> Any:
    """One row per pair x layer variant with both sides ``ok`` (the module docstring)."""
    import pandas as pd

    from .compare import ratio_table

    present = set(summary["algorithm"])
    parts = []
    for algo, ref in pairs:
        if algo not in present or ref not in present:
            continue
        t = ratio_table(summary, samples, reference=ref, algorithms=[algo])
        t = t[np.isfinite(t["speedup"].to_numpy(float))]
        if not len(t):
            continue
        parts.append(t.assign(pair=pair_label(algo, ref)))
    columns = ["pair", "algorithm", "reference", "layer", "layer_class", "layout", "dtype", "threads", "cache",
               "speedup", "ci_low", "ci_high", "result", "C", "out_pixels", "intensity", "count"]
    if not parts:
        return pd.DataFrame(columns=columns)
    t = pd.concat(parts, ignore_index=True)
    shape = summary.drop_duplicates("layer").set_index("layer")
    specs = dict(zip(shape.index, specs_of(shape)))
    t["C"] = [specs[l].in_channels // specs[l].groups for l in t["layer"]]
    t["out_pixels"] = [specs[l].output_height * specs[l].output_width for l in t["layer"]]
    t["intensity"] = [specs[l].flops / (specs[l].input_bytes + specs[l].weight_bytes + specs[l].output_bytes)
                      for l in t["layer"]]
    t["result"] = [_result(lo, hi) for lo, hi in zip(t["ci_low"].to_numpy(float), t["ci_high"].to_numpy(float))]
    return t[columns].reset_index(drop=True)


def verdict(n: int, faster: int, slower: int) -> str:
    """:data:`CLASS_RULE` on counts."""
    if n and faster >= 2 * n / 3 and slower == 0:
        return "wins"
    if n and slower >= 2 * n / 3 and faster == 0:
        return "loses"
    return "mixed"


def class_verdicts(speedups: Any) -> Any:
    """Per pair x class x layout x dtype x threads x cache: ``layers``, ``faster``, ``slower``,
    ``ties``, ``share_faster`` (faster / layers), ``geomean`` speedup, ``min``/``max`` and ``verdict``;
    a row with class ``all`` per pair sums the pair over every class."""
    import pandas as pd

    keys = ["pair", "layout", "dtype", "threads", "cache"]
    rows = []
    if not len(speedups):
        return pd.DataFrame(columns=[*keys, "layer_class", "layers", "faster", "slower", "ties", "share_faster",
                                     "geomean", "min", "max", "verdict"])
    for key, g in speedups.groupby(keys, sort=False):
        for cls, part in [*sorted(g.groupby("layer_class"), key=lambda kv: class_order(kv[0])), ("all", g)]:
            n = len(part)
            faster, slower = int((part["result"] == "faster").sum()), int((part["result"] == "slower").sum())
            s = part["speedup"].to_numpy(float)
            rows.append(dict(**dict(zip(keys, key)), layer_class=cls, layers=n, faster=faster, slower=slower,
                             ties=n - faster - slower, share_faster=faster / n, geomean=geomean(s),
                             min=float(s.min()), max=float(s.max()), verdict=verdict(n, faster, slower)))
    return pd.DataFrame(rows)


def class_order(cls: str) -> tuple:
    """Classes by kind (dense, grouped, depthwise), then kernel size, then stride."""
    kind = 2 if cls.startswith("dw") else 1 if cls.startswith("g") else 0
    digits = [int(x) for x in "".join(ch if ch.isdigit() else " " for ch in cls).split()] or [0]
    return (kind, *digits, cls)


def trends(speedups: Any) -> Any:
    """Per pair and variant: Spearman's rank correlation of the speedup with ``C``, output
    pixels and intensity (NaN under 4 layers): does the algorithm gain on bigger layers?"""
    import pandas as pd

    keys = ["pair", "layout", "dtype", "threads", "cache"]
    rows = []
    for key, g in speedups.groupby(keys, sort=False):
        rec = dict(zip(keys, key), layers=len(g))
        for col in TREND_COLUMNS:
            rec[f"rho_{col}"] = (float(g["speedup"].corr(g[col].astype(float), method="spearman"))
                                 if len(g) >= 4 and g[col].nunique() > 1 else math.nan)
        rows.append(rec)
    return pd.DataFrame(rows, columns=[*keys, "layers", *(f"rho_{c}" for c in TREND_COLUMNS)])


def claims_against_paper(zoo_findings: list, paper_findings: list | None) -> list[dict[str, Any]]:
    """The paper's claims judged on the zoo beside the same claims on the paper's own layers:
    one record per (claim, reference) with both verdicts and whether they agree."""
    from .findings import UNTESTED

    paper = {(f.claim, f.reference): f for f in paper_findings or []}
    out = []
    for f in zoo_findings:
        if f.claim not in (1, 2, 3):
            continue
        p = paper.get((f.claim, f.reference))
        agree = ("-" if p is None or UNTESTED in (f.verdict, p.verdict)
                 else "agrees" if p.verdict == f.verdict else "differs")
        out.append(dict(claim=f.claim, reference=f.reference, zoo=f.verdict, zoo_headline=f.headline,
                        paper=p.verdict if p else "-", paper_headline=p.headline if p else "", agreement=agree))
    return out
