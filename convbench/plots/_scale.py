"""Figures that stay readable at any run size: per-class aggregation past a limit.

A per-layer figure draws one bar per layer and algorithm; past
:data:`MAX_LAYERS` layers that is more bars and labels than anyone can read
(the paper run has 64 layers, drawn one by one; a merged sweep has
thousands).
Then the figure shows one group per ``layer_class`` instead: a bar for the
class's centre (geometric mean or median over its layers, with a CI where
one is meaningful), every single layer's value as a dot over it (so the
distribution is there and nothing is dropped), the extreme layers named,
and the title says that it aggregates and how many layers and cases there
are. Cases without a valid value are counted in the panel title.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from . import _common as c

#: Most layers a per-layer figure draws one by one (six panels of 16; the paper run has 64).
MAX_LAYERS = 96
#: Most layer classes one aggregated panel shows; beyond, the rest are pooled as "other".
MAX_CLASSES = 24
#: Layers named in each aggregated panel: the largest and the smallest value.
NAMED = 1


def aggregated(summary: Any) -> bool:
    """Whether a per-layer figure of ``summary`` must aggregate (more than :data:`MAX_LAYERS` layers)."""
    return int(summary["layer"].nunique()) > MAX_LAYERS


def note(summary: Any) -> str:
    """The title line of an aggregated figure."""
    n_layers = int(summary["layer"].nunique())
    return (f"{n_layers} layers, {len(summary)} cases (> {MAX_LAYERS} layers): aggregated per layer class, "
            f"a dot per layer")


def class_order(summary: Any) -> list[str]:
    """Layer classes in first-appearance order, the tail pooled as ``other`` past :data:`MAX_CLASSES`."""
    classes = list(dict.fromkeys(summary["layer_class"].fillna("").astype(str)))
    return classes if len(classes) <= MAX_CLASSES else classes[:MAX_CLASSES - 1] + ["other"]


def class_of(summary: Any, classes: Sequence[str]) -> Any:
    """Each row's class among ``classes`` (pooled ``other`` included)."""
    cls = summary["layer_class"].fillna("").astype(str)
    return cls.where(cls.isin(set(classes)), "other")


@dataclass
class Centre:
    """How an aggregated bar summarises a class: ``fn(values) -> (centre, low, high)``."""

    label: str
    fn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def geomean_centre(confidence: float = 0.95) -> Centre:
    """Geometric mean over the layers, with a bootstrap CI over the layers."""
    from ..groupstats import geomean_cis

    def fn(values: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return geomean_cis(values, keys, confidence=confidence)

    return Centre(f"geometric mean over layers, {int(confidence * 100)}% CI", fn)


def median_centre() -> Centre:
    """Median over the layers, no interval."""

    def fn(values: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        import pandas as pd

        s = pd.Series(values).groupby(pd.Series(keys, dtype=object), sort=False).median()
        nan = np.full(len(s), math.nan)
        return np.asarray(s.index, dtype=object), s.to_numpy(float), nan, nan

    return Centre("median over layers", fn)


def class_panel(
    ax: Any, part: Any, value: str, algos: Sequence[str], classes: Sequence[str], centre: Centre | None, *,
    valid: Any = None, log: bool = False, floor: float | None = None, name_layers: bool = True,
    marker: str = "o",
) -> int:
    """Draw one aggregated panel: per class, per algorithm a centre bar and one dot per layer.

    ``part`` holds the panel's cases; ``value`` the column drawn; ``valid``
    a boolean Series of the cases that have a value (default: finite, and
    positive on a log axis). Classes without any valid case of an algorithm
    get the hatched "absent" column. Returns the number of cases without a
    valid value (for the panel title).
    """
    width, offsets = _geometry(len(algos))
    vals = part[value].to_numpy(dtype=float)
    ok = np.isfinite(vals) & ((vals > 0) if log else True)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    cls = class_of(part, classes).to_numpy(dtype=object)
    algo_col = part["algorithm"].astype(str).to_numpy(dtype=object)
    rng = np.random.default_rng(0)  # seeded jitter: the same figure every time
    keys = np.array([f"{a}\x00{k}" for a, k in zip(algo_col, cls)], dtype=object)
    centres: dict[str, tuple[float, float, float]] = {}
    if centre is not None and ok.any():
        names, mid, lo, hi = centre.fn(vals[ok], keys[ok])
        centres = {str(k): (m, l, h) for k, m, l, h in zip(names, mid, lo, hi)}
    named: list[tuple[float, float, str]] = []
    layers = part["layer"].astype(str).to_numpy(dtype=object)
    for j, algo in enumerate(algos):
        color = c.color_of(algo, algos)
        for i, k in enumerate(classes):
            rows = (algo_col == algo) & (cls == k)
            if not rows.any():
                continue
            x = i + offsets[j]
            good = rows & ok
            if not good.any():
                c.mark_absent(ax, x, width, color)
                continue
            m, lo, hi = centres.get(f"{algo}\x00{k}", (math.nan, math.nan, math.nan))
            if np.isfinite(m):
                base = floor if log and floor is not None else 0.0
                err = None
                if np.isfinite(lo) and np.isfinite(hi):
                    # clipped: identical layers give lo == m == hi up to rounding, and matplotlib
                    # refuses a whisker of -1e-16
                    err = np.array([[max(m - lo, 0.0)], [max(hi - m, 0.0)]])
                ax.bar([x], [m - base], bottom=base, width=width, color=color, alpha=0.55, yerr=err,
                       ecolor="0.15", error_kw={"elinewidth": 0.8, "capsize": 1.5})
            ys = vals[good]  # every layer, however many: a dot each
            idx = np.flatnonzero(good)
            xs = x + (rng.random(len(ys)) - 0.5) * width * 0.8
            ax.plot(xs, ys, ls="none", marker=marker, ms=2.2, mfc=color, mec="0.2", mew=0.2, alpha=0.7)
            named += [(xv, yv, layers[t]) for xv, yv, t in zip(xs, ys, idx)]
    if name_layers and named:
        named.sort(key=lambda t: t[1])
        ends = named[:NAMED] + named[-NAMED:] if len(named) > 2 * NAMED else named
        for xv, yv, name in ends:
            same = sum(1 for t in named if t[1] == yv) - 1  # replicated layers share a value: one label
            label = name + (f" (+{same} more)" if same else "")
            ax.annotate(label, (xv, yv), xytext=(4, 0), textcoords="offset points", fontsize=6, color="0.15",
                        va="center", bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
    n = part.groupby(cls, sort=False)["layer"].nunique()
    ax.set_xticks(range(len(classes)), [f"{k or '(no class)'}\n{int(n.get(k, 0))} layers" for k in classes],
                  fontsize=7)
    ax.set_xlim(-0.6, len(classes) - 0.4)
    if log:
        ax.set_yscale("log")
        if floor is not None:
            ax.set_ylim(bottom=floor)
    return int((~ok).sum())


def _geometry(n_algos: int) -> tuple[float, np.ndarray]:
    width = min(0.8 / max(n_algos, 1), 0.3)
    return width, (np.arange(n_algos) - (n_algos - 1) / 2) * width


def width_for(n_classes: int, n_algos: int) -> float:
    return float(np.clip(2.5 + n_classes * (0.18 * n_algos + 0.3), 8, 24))


def missing_note(n_missing: int, n_cases: int) -> str:
    return f"; {n_missing} of {n_cases} cases have no valid value (hatched where a class has none)" if n_missing else ""
