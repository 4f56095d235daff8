"""What every figure shares: Agg canvas, colours, titles, layer axes, saving.

Figures are built as :class:`matplotlib.figure.Figure` objects on the Agg
canvas, never through pyplot's global state, so plotting works headless, in
threads and inside a notebook alike.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..quant import QUANT_DTYPES
from ..results.schema import flag

#: Fixed colours so an algorithm looks the same in every figure.
COLORS = {
    "naive": "#7f7f7f",
    "im2col": "#1f77b4",
    "im2col-numba": "#6baed6",
    "gemm-direct": "#2ca02c",
    "winograd": "#ff7f0e",
    "fft": "#9467bd",
    "indirect": "#d62728",
    # production peers: greys (and hatched bars / dashed lines, see peer_style), so they
    # never pass for convbench's own algorithms
    "torch": "#4d4d4d",
    "onednn": "#8c8c8c",
    "onnxruntime": "#b5b5b5",
}
_PEER_GREYS = ["#666666", "#a0a0a0", "#2b2b2b", "#c8c8c8"]
#: How a peer's bars are filled: hatched over its grey.
PEER_HATCH = "xxx"
_EXTRA = ["#e377c2", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"]
#: Statuses that mean "no valid time": drawn as absent, never as zero.
ABSENT_LABEL = "skipped / failed (no valid time)"
ABSENT_HATCH = "////"
VARIANT = ["layout", "dtype", "threads"]
#: What every figure is written as unless asked otherwise (``--format png,svg``): PNG alone
#: draws in about half the time of PNG + SVG.
FORMATS = ("png",)
#: PNG resolution. 110 dpi (1700-1800 px across a paper-run figure) draws ~30% faster than 150
#: with text still crisp; `convbench plot` must stay under 10 s on the paper run (issue 16).
PNG_DPI = 110


def is_peer(algorithm: str) -> bool:
    """A production peer (torch, onednn, onnxruntime, or a plugin marked ``peer``)."""
    from ..analysis.peers import is_peer as _is_peer

    return _is_peer(str(algorithm))


def color_of(algorithm: str, order: Sequence[str] = ()) -> str:
    if algorithm in COLORS:
        return COLORS[algorithm]
    if is_peer(algorithm):
        return _PEER_GREYS[abs(hash(algorithm)) % len(_PEER_GREYS)]
    others = [a for a in order if a not in COLORS]
    i = others.index(algorithm) if algorithm in others else abs(hash(algorithm))
    return _EXTRA[i % len(_EXTRA)]


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


# -- the run's context ------------------------------------------------------------


def machine_label(env: dict | None, threads: Iterable[int] | int | None = None) -> str:
    """``AMD EPYC 7B13 (2 cores), OpenBLAS, 1 thread`` from env.json."""
    env = env or {}
    cpu = env.get("cpu") or {}
    model = cpu.get("model") or "unknown CPU"
    cores = cpu.get("available_cores") or cpu.get("logical_cores")
    parts = [f"{model}" + (f" ({cores} cores)" if cores else "")]
    blas = (env.get("threads") or {}).get("blas")
    if blas:
        parts.append(f"BLAS: {blas}")
    if threads is not None:
        ts = [threads] if isinstance(threads, (int, np.integer)) else sorted(set(int(t) for t in threads))
        if ts:
            word = "thread" if ts == [1] else "threads"
            parts.append(f"{', '.join(map(str, ts))} {word}")
    return ", ".join(parts)


def _by_threads(table: Any, threads: int) -> float:
    """``table[threads]`` of a {threads: value} dict (nearest lower count; NaN if empty)."""
    known = {int(k): float(v) for k, v in (table or {}).items() if v is not None}
    if not known:
        return math.nan
    if threads in known:
        return known[threads]
    lower = [k for k in known if k <= threads]
    return known[max(lower)] if lower else known[min(known)]


def sgemm_peak(env: dict | None, threads: int) -> float:
    """Measured sgemm GFLOP/s at ``threads``: the best of the run's calibrations
    (``sgemm_gflops_best``) when env.json has it, else the one calibration
    (``sgemm_gflops``); NaN if neither. One calibration taken while the machine
    was busy sat below the rates the algorithms then reached."""
    cal = (env or {}).get("calibration") or {}
    best = _by_threads(cal.get("sgemm_gflops_best"), threads)
    return best if math.isfinite(best) else _by_threads(cal.get("sgemm_gflops"), threads)


def sgemm_peak_label(env: dict | None) -> str:
    """How :func:`sgemm_peak` was measured, for a legend."""
    cal = (env or {}).get("calibration") or {}
    return "best of several calibrations" if cal.get("sgemm_gflops_best") else "one calibration"


def memory_bandwidth(env: dict | None) -> float:
    """Calibrated copy bandwidth in GB/s (NaN if not measured)."""
    value = ((env or {}).get("calibration") or {}).get("memory_copy_gbs")
    return float(value) if value else math.nan


def baseline_of(summary: Any, config: dict | None = None) -> str:
    """The run's baseline algorithm: the ``baseline`` column, the config, else im2col."""
    if "baseline" in summary.columns:
        values = [v for v in summary["baseline"].dropna().astype(str).unique() if v]
        if values:
            return values[0]
    if config and config.get("baseline"):
        return str(config["baseline"])
    return "im2col"


def algorithms_of(summary: Any) -> list[str]:
    """Algorithms in the order they first appear (the run's order)."""
    return list(dict.fromkeys(summary["algorithm"].astype(str)))


def _caches(df: Any) -> Any:
    return df["cache"] if "cache" in df.columns else ["warm"] * len(df)


def variants_of(summary: Any) -> list[tuple]:
    """The (layout, dtype, threads, cache) combinations of a run, in order."""
    return list(dict.fromkeys(zip(summary["layout"], summary["dtype"], summary["threads"], _caches(summary))))


def in_variant(df: Any, variant: tuple) -> Any:
    """The rows of ``df`` in ``variant`` (a boolean mask)."""
    layout, dtype, threads, cache = variant
    mask = (df["layout"] == layout) & (df["dtype"] == dtype) & (df["threads"] == threads)
    return mask & (df["cache"] == cache) if "cache" in df.columns else mask


def flagged(summary: Any) -> set[tuple]:
    """(layer, algorithm, *variant) of the cases flagged ``unstable`` or ``contended``: their
    numbers moved while they ran (the machine drifted, or other processes took the cores)."""
    rows = summary[flag(summary, "unstable") | flag(summary, "contended")]
    return set(zip(rows["layer"], rows["algorithm"], rows["layout"], rows["dtype"], rows["threads"], _caches(rows)))


def mark_flagged(ax: Any, x: float, y: float) -> None:
    """A red "!" above a bar whose case is :func:`flagged`."""
    ax.annotate("!", (x, y), ha="center", va="bottom", color="#c5221f", fontsize=8, fontweight="bold")


def flagged_handle() -> Line2D:
    return Line2D([], [], ls="", marker="$!$", color="#c5221f", label="unstable or contended")


def is_8bit(dtype: Any) -> bool:
    """A quantized dtype (``u8s8``): its rates are GOP/s, its error is in LSB."""
    return str(dtype) in QUANT_DTYPES


def rate_unit(dtypes: Iterable[Any]) -> str:
    """The unit of a throughput axis holding ``dtypes``: ``GFLOP/s`` for floats,
    ``GOP/s`` for 8-bit, and both named when an axis holds both (figures avoid that)."""
    kinds = {is_8bit(d) for d in dtypes}
    return "GOP/s" if kinds == {True} else "GFLOP/s or GOP/s (8-bit)" if kinds == {True, False} else "GFLOP/s"


def rate_headline(dtypes: Iterable[Any]) -> str:
    """A figure title's unit where panels are per dtype: ``GFLOP/s``, ``GOP/s``, or both, said apart."""
    kinds = {is_8bit(d) for d in dtypes}
    return "GFLOP/s (GOP/s on 8-bit panels)" if kinds == {True, False} else rate_unit(dtypes)


def variant_label(variant: tuple) -> str:
    layout, dtype, threads, cache = variant
    return (f"{layout.upper()}, {dtype}, {threads} thread{'s' if threads != 1 else ''}"
            + (", cold caches" if cache == "cold" else ""))


def layer_order(summary: Any) -> tuple[list[str], list[str]]:
    """Layers grouped by ``layer_class`` (classes in first-appearance order).

    Returns ``(layers, classes)`` with ``classes[i]`` the class of ``layers[i]``.
    """
    first = summary.drop_duplicates("layer")
    classes = list(dict.fromkeys(first["layer_class"].fillna("").astype(str)))
    layers, layer_classes = [], []
    for cls in classes:
        for name in first.loc[first["layer_class"].fillna("").astype(str) == cls, "layer"]:
            layers.append(str(name))
            layer_classes.append(cls)
    return layers, layer_classes


#: Most layers one panel shows; longer runs wrap onto more panels, whole classes first.
MAX_LAYERS_PER_PANEL = 16


def layer_rows(summary: Any, max_per_row: int = MAX_LAYERS_PER_PANEL) -> list[tuple[list[str], list[str]]]:
    """The layers (grouped by class) split into panels of at most ``max_per_row``.

    Whole classes are packed together while they fit; a class larger than a
    panel is split into consecutive chunks.
    """
    layers, classes = layer_order(summary)
    groups: list[tuple[list[str], list[str]]] = []
    for cls in dict.fromkeys(classes):
        names = [l for l, k in zip(layers, classes) if k == cls]
        for i in range(0, len(names), max_per_row):
            chunk = names[i:i + max_per_row]
            groups.append((chunk, [cls] * len(chunk)))
    rows: list[tuple[list[str], list[str]]] = []
    for names, cls in groups:
        if rows and len(rows[-1][0]) + len(names) <= max_per_row:
            rows[-1][0].extend(names)
            rows[-1][1].extend(cls)
        else:
            rows.append((list(names), list(cls)))
    return rows


def layer_panels(keys: Sequence[Any], rows: list[tuple[list[str], list[str]]]) -> list[tuple[Any, list[str], list[str]]]:
    """Every (key, layers, classes) panel: one per key (variant) per layer row."""
    return [(k, layers, classes) for k in keys for layers, classes in rows]


def decorate_layer_axis(ax: Any, layers: Sequence[str], classes: Sequence[str], show_labels: bool = True) -> None:
    """Layer names on x, with separators and a label above each ``layer_class`` group."""
    ax.set_xticks(range(len(layers)))
    if show_labels:
        ax.set_xticklabels(layers, rotation=60, ha="right", fontsize=7)
    else:
        ax.set_xticklabels([])
    ax.set_xlim(-0.6, len(layers) - 0.4)
    start = 0
    for i in range(1, len(classes) + 1):
        if i == len(classes) or classes[i] != classes[start]:
            if i < len(classes):
                ax.axvline(i - 0.5, color="0.6", lw=0.8, ls=":")
            if classes[start]:
                ax.text((start + i - 1) / 2, 0.985, classes[start], transform=ax.get_xaxis_transform(),
                        ha="center", va="top", fontsize=8, color="0.25", zorder=5,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
            start = i


def mark_absent(ax: Any, x: float, width: float, color: str, log: bool = False) -> None:
    """A hatched, unfilled column over the full height: no valid time for this case."""
    ax.bar(x, 1.0, width=width, bottom=0.0, transform=ax.get_xaxis_transform(), fill=False,
           hatch=ABSENT_HATCH, edgecolor=color, linewidth=0.0, alpha=0.45)
    ax.plot([x], [0.02], marker="x", color=color, ms=4, transform=ax.get_xaxis_transform(), clip_on=False)


def absent_handle() -> Patch:
    return Patch(fill=False, hatch=ABSENT_HATCH, edgecolor="0.4", label=ABSENT_LABEL)


def title(fig: Figure, headline: str, env: dict | None, threads: Any = None, baseline: str | None = None) -> None:
    """Headline, then the machine, the thread count(s) and the baseline on a second line."""
    sub = machine_label(env, threads)
    if baseline:
        sub += f"; baseline: {baseline}"
    fig.suptitle(f"{headline}\n{sub}", fontsize=11)


def output_stem(out: str | Path, default_name: str) -> Path:
    """``out`` as a file stem: a folder gets ``default_name``; a suffix is dropped."""
    out = Path(out)
    if out.suffix.lower() in (".png", ".svg"):
        return out.with_suffix("")
    return out / default_name


def save(fig: Figure, out: str | Path, default_name: str, formats: Sequence[str] | None = None) -> list[Path]:
    """Write the figure in ``formats`` (default :data:`FORMATS`): PNG at :data:`PNG_DPI`, SVG with text
    kept as text, or PDF; returns the paths.

    The layout is computed once, on the first format, and reused.
    """
    import matplotlib

    stem = output_stem(out, default_name)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "convbench"}):
        for i, fmt in enumerate(formats or FORMATS):
            if fmt not in ("png", "svg", "pdf"):
                raise ValueError(f"unknown figure format {fmt!r}; use png, svg or pdf")
            path = stem.with_suffix(f".{fmt}")
            fig.savefig(path, dpi=PNG_DPI if fmt == "png" else None, metadata=_metadata(fmt, fig))
            if i == 0:
                fig.set_layout_engine("none")
            paths.append(path)
    return paths


def _metadata(fmt: str, fig: Figure) -> dict:
    label = fig._suptitle.get_text().strip() if fig._suptitle is not None else ""
    if fmt == "png":
        return {"Title": label, "Software": "convbench"}
    return {"Title": label}


def no_data(fig: Figure, message: str) -> None:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color="0.3", wrap=True)


def bar_geometry(n_algos: int) -> tuple[float, np.ndarray]:
    """Bar width and each algorithm's offset within a layer's group of bars."""
    width = min(0.8 / max(n_algos, 1), 0.3)
    offsets = (np.arange(n_algos) - (n_algos - 1) / 2) * width
    return width, offsets


def panel_height(n_panels: int, n_rows: int = 1) -> float:
    """Figure height: 3.2 in per panel, more when every panel carries its layer names."""
    return (3.2 + (1.1 if n_rows > 1 else 0.0)) * n_panels + 1.6


def figure_width(n_layers: int, n_algos: int) -> float:
    """Figure width for grouped bars: grows with layers x algorithms, 8 to 30 in."""
    return float(np.clip(1.8 + n_layers * (0.09 * n_algos + 0.2), 8, 30))


def log_ticks(ax: Any, axis: str = "y") -> None:
    """Readable log-axis ticks: 1, 2, 5 per decade, printed as plain numbers."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())
    no_minor_ticks(ax, axis)


def no_minor_ticks(ax: Any, axis: str = "y") -> None:
    """No minor ticks on a log axis: over many decades matplotlib makes hundreds of unlabelled
    ticks whose layout was a third of a figure's drawing time."""
    from matplotlib.ticker import NullLocator

    (ax.yaxis if axis == "y" else ax.xaxis).set_minor_locator(NullLocator())


def peer_style(algorithm: str, line: bool = False) -> dict:
    """Extra matplotlib keywords that set a peer apart: hatched bars, or dashed lines
    (``line=True``); nothing for convbench's own algorithms."""
    if not is_peer(algorithm):
        return {}
    return {"ls": "--"} if line else {"hatch": PEER_HATCH, "edgecolor": "white", "linewidth": 0.0}


def algorithm_handles(algos: Sequence[str]) -> list[Patch]:
    """Legend patches, one per algorithm, in the fixed colours (even with no bar drawn);
    peers hatched and labelled as peers."""
    return [Patch(facecolor=color_of(a, algos), label=f"{a} (peer)" if is_peer(a) else a, **peer_style(a))
            for a in algos]


def log_floor(values: Any, default: float) -> float:
    """The bottom of a log axis: the decade below half the smallest finite
    positive of ``values`` (``default`` when there is none), where a zero or
    missing value is drawn."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    return float(10 ** np.floor(np.log10(v.min() / 2))) if v.size else default
