"""The headline figure: one compact panel that reads at a README's width.

The per-layer figures (speedup, gflops) hold every layer and every
algorithm, which makes them tall; shown at README width their labels are
unreadable. This one answers the paper's question alone: how much faster is
``indirect`` than the GEMM-based algorithm, per layer class, against the
same micro-kernel and against the machine's BLAS. A dot per layer, a bar
at the class's geometric mean, the line of "as fast" and the paper's +62%.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..timing import geomean
from . import _common as c

#: The paper's best reported speedup over im2col + GEMM ("up to 62%").
PAPER_BEST = 1.62
REFERENCES = ("im2col-numba", "im2col")
LABELS = {"im2col-numba": "vs im2col, same micro-kernel", "im2col": "vs im2col on BLAS"}


def headline_table(summary: Any, algorithm: str = "indirect",
                   references: Sequence[str] = REFERENCES) -> Any:
    """Per layer and reference: speedup = t(reference) / t(algorithm), ``ok`` cases only,
    at the lowest thread count of each layout x dtype, warm caches where the run has them."""
    import pandas as pd

    ok = summary[summary["status"] == "ok"]
    if "cache" in ok.columns and (ok["cache"] == "warm").any():  # the paper's setting; cold is in report.md
        ok = ok[ok["cache"] == "warm"]
    lowest = ok.groupby(["layout", "dtype"])["threads"].transform("min")
    ok = ok[ok["threads"] == lowest]
    keys = ["layer", "layer_class", "layout", "dtype", "threads"]
    mine = ok[ok["algorithm"] == algorithm].set_index(keys)["time_median_s"]
    rows = []
    for ref in references:
        theirs = ok[ok["algorithm"] == ref].set_index(keys)["time_median_s"]
        both = theirs.index.intersection(mine.index)
        for key in both:
            rows.append({**dict(zip(keys, key)), "reference": ref,
                         "speedup": float(theirs[key] / mine[key])})
    return pd.DataFrame(rows, columns=[*keys, "reference", "speedup"])


def figure_headline(summary: Any, env: dict | None = None, algorithm: str = "indirect",
                    references: Sequence[str] = REFERENCES) -> Figure:
    """Speedup of ``algorithm`` over each reference, per layer class (see the module).

    One kind of arithmetic per axis: the float rows where the run has them (the
    paper's setting), else the 8-bit ones, and the title says which.
    """
    t = headline_table(summary, algorithm, references)
    eight = t["dtype"].map(c.is_8bit).astype(bool) if len(t) else t["dtype"]
    kind = ""
    if len(t) and eight.any():
        t, kind = (t[~eight], " (float layers)") if (~eight).any() else (t, " (8-bit u8s8 layers)")
    refs = [r for r in references if r in set(t["reference"])]
    fig = c.new_figure(7.5, 3.9)
    threads = sorted(t["threads"].unique()) if len(t) else None
    fig.suptitle(f"How much faster {algorithm} is than im2col + GEMM, per layer class{kind}\n"
                 f"{c.machine_label(env, threads)}", fontsize=11)
    if t.empty:
        c.no_data(fig, f"no layer has both {algorithm} and one of {', '.join(references)} ok")
        return fig
    ax = fig.add_subplot()
    classes = list(dict.fromkeys(t["layer_class"].astype(str)))
    width = 0.8 / len(refs)
    colors = {ref: c.color_of(ref, refs) for ref in refs}
    rng = np.random.default_rng(0)  # fixed jitter: the same figure every time
    for i, cls in enumerate(classes):
        for j, ref in enumerate(refs):
            part = t[(t["layer_class"].astype(str) == cls) & (t["reference"] == ref)]["speedup"]
            if part.empty:
                continue
            x = i - 0.4 + width * (j + 0.5)
            mean = geomean(part)
            ax.bar(x, mean - 1.0, bottom=1.0, width=width * 0.9, color=colors[ref], alpha=0.35)
            ax.plot(x + rng.uniform(-width * 0.3, width * 0.3, len(part)), part, ls="none", marker="o", ms=3.5,
                    color=colors[ref], alpha=0.9)
            ax.text(x, max(mean, part.max()) * 1.04, f"{(mean - 1) * 100:+.0f}%", ha="center", va="bottom",
                    fontsize=9, color="0.15")
    ax.axhline(1.0, color="black", lw=1.0)
    ax.axhline(PAPER_BEST, color="0.35", lw=1.0, ls="--")
    ax.set_yscale("log")
    lo, hi = float(t["speedup"].min()), float(t["speedup"].max())
    bottom, top = min(lo, 0.9) / 1.1, max(hi, PAPER_BEST) * 1.5  # room for the geomean labels
    ax.set_ylim(bottom, top)
    fine = (0.5, 0.75, 1, 1.25, 1.5, 2, 3)  # a narrow range: steps of a quarter
    coarse = tuple(m * 10.0 ** e for e in range(-2, 4) for m in (1, 2, 5))  # a wide one: 1-2-5
    ticks = [v for v in (fine if top / bottom < 8 else coarse) if bottom <= v <= top]
    ax.set_yticks(ticks, [f"{v:g}x" for v in ticks])
    ax.minorticks_off()
    ax.set_xticks(range(len(classes)))
    counts = {cls: t[t["layer_class"].astype(str) == cls]["layer"].nunique() for cls in classes}
    ax.set_xticklabels([f"{cls}\n({n} layer{'s' if n != 1 else ''})" for cls, n in counts.items()], fontsize=10)
    ax.set_xlim(-0.5, len(classes) - 0.5)
    ax.set_ylabel(f"t(im2col) / t({algorithm}), log", fontsize=10)
    ax.tick_params(axis="y", labelsize=9)
    ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=colors[r], alpha=0.6, label=f"{LABELS.get(r, 'vs ' + r)}") for r in refs]
    handles.append(Line2D([], [], ls="none", marker="o", color="0.3", label="a layer (bar: geomean)"))
    handles.append(Line2D([], [], color="0.35", ls="--", label="paper: up to +62%"))
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=9, frameon=False)
    return fig


def plot_headline(summary: Any, env: dict | None, out: str | Path, *, formats: Any = None) -> list[Path]:
    """Write ``headline.png``/``.svg`` (see :func:`figure_headline`); returns the paths."""
    return c.save(figure_headline(summary, env), out, "headline", formats)
