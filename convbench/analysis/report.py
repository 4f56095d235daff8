"""``convbench reproduce``: run the paper's sweep, draw it, and judge its claims.

The paper is Marat Dukhan, "The Indirect Convolution Algorithm" (2019). Its
claims, as this report tests them:

1. indirect convolution outperforms the GEMM-based algorithm (im2col + GEMM)
   on layers that need an im2col copy, by up to 62%;
2. it is slightly slower on 1x1 stride-1 layers (where im2col needs no copy);
3. its memory overhead is smaller than im2col's by a factor proportional to
   the number of input channels.

``--dtype u8s8`` judges the same claims on 8-bit layers, and a fourth claim
(where ONNX Runtime's int8 indirect convolution starts to pay) on a channel
grid: :mod:`convbench.analysis.int8_report`.

Each claim is judged twice: against ``im2col-numba`` (the same numba
micro-kernel under both algorithms: the paper's method, so the difference is
the algorithm) and against ``im2col`` on the machine's BLAS. The verdicts
come from the numbers by the rules below (:data:`RULES`), never from text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..results.schema import specs_of
from ..timing import geomean
from .compare import ratio_table
from . import int8_report as int8
from .findings import FAILS, HOLDS, MIXED, UNTESTED, Finding
from .findings import fmt_pct as _fmt_pct, fmt_speedup as _fmt_speedup, md_table as _md_table, memory_table, speed_table
from .machines import headline_results, machines_section
from .machine_card import machine_lines
from .peers import report_lines
from .phase_report import cache_sections, headline_cases, pack_share_lines, thread_sections

PAPER = 'Marat Dukhan, "The Indirect Convolution Algorithm", arXiv:1907.02129 (2019)'
CONFIG = "paper"
#: The paper's method first (same micro-kernel), then the machine's BLAS.
REFERENCES = ("im2col-numba", "im2col")
REFERENCE_LABEL = {
    "im2col-numba": "same micro-kernel (im2col-numba, the paper's method)",
    "im2col": "machine BLAS (im2col + numpy matmul)",
}
#: In 8-bit no BLAS has a GEMM: im2col runs the numba 8-bit GEMM too.
INT8_LABEL = {**REFERENCE_LABEL, "im2col": "machine BLAS (no 8-bit GEMM: im2col's rows are skipped)"}
#: ``--quick``: layers of paper.yaml covering every claim (3x3 and 5x5 layers
#: that need im2col, 1x1 stride-1 layers, a spread of input channels), the
#: three algorithms the claims are about, and quick timing.
QUICK_LAYERS = [
    "googlenet_4a_5x5", "googlenet_5a_5x5", "lenet5_conv2", "resnet50_res4_2_b",
    "grid3x3/s1_p1_c64_hw14", "grid3x3/s2_p1_c128_hw28", "resnet50_res4_2_a", "mobilenet_pw_7",
]
QUICK_ALGORITHMS = ["im2col", "im2col-numba", "indirect"]
QUICK_MIN_SAMPLES = 8


RULES = {
    1: ("Per layer that needs im2col, the speedup t(reference) / t(indirect) is *faster* when its 95% CI "
        "lies above 1, *slower* when below, else a tie. **holds**: faster on at least 2/3 of the layers and "
        "slower on none; **does not hold**: faster on fewer than 1/3, or slower on at least half; "
        "**mixed**: otherwise."),
    2: ("On 1x1 stride-1 layers, with the same per-layer classes: **holds**: indirect is slower on at least "
        "half of the layers, faster on none, and the geometric-mean speedup is in [0.75, 1) (slower by at most "
        "25%); **does not hold**: indirect is faster on at least half, or the geometric mean is >= 1 and it is "
        "slower on none; **mixed**: otherwise (e.g. much slower than 'slightly', or not measurably slower)."),
    3: ("On layers that need im2col, factor = im2col workspace / indirect workspace (measured where "
        "measured, else analytic), fitted as factor = a * C^b over the input channels per group C. "
        "**holds**: b in [0.75, 1.25] with R^2 >= 0.8 and factor > 1 on every layer with C >= 8; "
        "**does not hold**: b < 0.5, or factor <= 1 on at least half the layers; **mixed**: otherwise. "
        "Needs at least 3 distinct C."),
}
CLAIMS = {
    1: "Indirect convolution outperforms the GEMM-based algorithm on layers that need im2col, by up to 62%.",
    2: "Indirect convolution is slightly slower than the GEMM-based algorithm on 1x1 stride-1 layers.",
    3: ("Indirect convolution's memory overhead is smaller than im2col's by a factor proportional to the "
        "number of input channels."),
}


# -- which layers ----------------------------------------------------------------------


def is_pointwise_s1(df: Any) -> Any:
    """1x1, stride 1, no padding (:attr:`ConvSpec.is_pointwise`): im2col needs no copy."""
    import pandas as pd

    return pd.Series([s.is_pointwise for s in specs_of(df)], index=df.index, dtype=bool)


def needs_im2col(df: Any) -> Any:
    return ~is_pointwise_s1(df)


def _classify(row: Any) -> str:
    if np.isfinite(row["ci_low"]) and row["ci_low"] > 1:
        return "faster"
    if np.isfinite(row["ci_high"]) and row["ci_high"] < 1:
        return "slower"
    return "tie"


def _speed_rows(summary: Any, samples: Any, reference: str, mask: Callable[[Any], Any]) -> Any:
    t = ratio_table(summary[mask(summary)], samples, reference=reference, algorithms=["indirect"])
    if t.empty:
        return t
    t = t[np.isfinite(t["speedup"])].copy()
    t["result"] = [_classify(r) for r in t.to_dict("records")] if len(t) else []
    return t


# -- the claims --------------------------------------------------------------------------


def claim_speed_im2col_layers(summary: Any, samples: Any, reference: str) -> Finding:
    t = _speed_rows(summary, samples, reference, needs_im2col)
    if t.empty:
        return Finding(1, reference, UNTESTED, f"no layer needing im2col has both indirect and {reference} ok", t)
    n = len(t)
    faster, slower = int((t["result"] == "faster").sum()), int((t["result"] == "slower").sum())
    if faster >= 2 * n / 3 and slower == 0:
        verdict = HOLDS
    elif faster < n / 3 or slower >= n / 2:
        verdict = FAILS
    else:
        verdict = MIXED
    best = t.loc[t["speedup"].idxmax()]
    gm = geomean(t["speedup"])
    headline = (f"faster on {faster}/{n} layers, slower on {slower}; best {_fmt_speedup(best['speedup'], best['ci_low'], best['ci_high'])} "
                f"({best['layer']}; paper: up to +62%); geometric mean {_fmt_pct(gm)}")
    return Finding(1, reference, verdict, headline, t, {"max": best["speedup"], "geomean": gm,
                                                         "faster": faster, "slower": slower, "n": n})


def claim_speed_pointwise(summary: Any, samples: Any, reference: str) -> Finding:
    t = _speed_rows(summary, samples, reference, is_pointwise_s1)
    if t.empty:
        return Finding(2, reference, UNTESTED, f"no 1x1 stride-1 layer has both indirect and {reference} ok", t)
    n = len(t)
    faster, slower = int((t["result"] == "faster").sum()), int((t["result"] == "slower").sum())
    gm = geomean(t["speedup"])
    if slower >= n / 2 and faster == 0 and 0.75 <= gm < 1.0:
        verdict = HOLDS
    elif faster >= n / 2 or (gm >= 1.0 and slower == 0):
        verdict = FAILS
    else:
        verdict = MIXED
    headline = (f"geometric-mean speedup {_fmt_pct(gm)} (range {_fmt_pct(t['speedup'].min())} to "
                f"{_fmt_pct(t['speedup'].max())}); slower on {slower}/{n} layers, faster on {faster}")
    return Finding(2, reference, verdict, headline, t, {"geomean": gm, "faster": faster, "slower": slower, "n": n})


def _workspace(row: Any) -> tuple[float, str]:
    m = row.get("measured_workspace_bytes")
    if m is not None and np.isfinite(m) and m > 0:
        return float(m), "measured"
    a = row.get("workspace_bytes")
    return (float(a), "analytic") if a is not None and np.isfinite(a) else (math.nan, "")


def claim_memory(summary: Any, reference: str) -> Finding:
    import pandas as pd

    df = summary[needs_im2col(summary) & (summary["status"] == "ok")]
    keys = ["layer", "layout", "dtype", "threads"]
    ind = {tuple(r[k] for k in keys): r for r in df[df["algorithm"] == "indirect"].to_dict("records")}
    rows = []
    for r in df[df["algorithm"] == reference].to_dict("records"):
        other = ind.get(tuple(r[k] for k in keys))
        if other is None:
            continue
        ref_b, how_r = _workspace(r)
        ind_b, how_i = _workspace(other)
        analytic = (r["workspace_bytes"] / other["workspace_bytes"]
                    if other["workspace_bytes"] and np.isfinite(other["workspace_bytes"]) else math.nan)
        c = int(r["in_channels"] // r["groups"])
        rows.append({"layer": r["layer"], "layer_class": r["layer_class"], "threads": r["threads"], "C": c,
                     "reference_bytes": ref_b, "indirect_bytes": ind_b,
                     "factor": ref_b / ind_b if ind_b > 0 else math.nan, "factor_analytic": analytic,
                     "source": how_r if how_r == how_i else f"{how_r}/{how_i}"})
    t = pd.DataFrame(rows)
    if t.empty:
        return Finding(3, reference, UNTESTED, f"no layer needing im2col has both indirect and {reference} ok", t)
    # memory does not depend on threads: one row per layer
    t = t.sort_values("threads").drop_duplicates("layer").sort_values("C").reset_index(drop=True)
    t["factor_per_C"] = t["factor"] / t["C"]
    good = t[np.isfinite(t["factor"]) & (t["factor"] > 0)]
    if good["C"].nunique() < 3:
        return Finding(3, reference, UNTESTED, f"only {good['C'].nunique()} distinct input-channel counts: "
                       "cannot fit the factor against C", t)
    x, y = np.log(good["C"].to_numpy(float)), np.log(good["factor"].to_numpy(float))
    b, a = np.polyfit(x, y, 1)
    resid = y - (a + b * x)
    r2 = 1 - float(resid @ resid) / float(((y - y.mean()) @ (y - y.mean()))) if np.ptp(y) > 0 else 0.0
    wide = good[good["C"] >= 8]
    smaller_everywhere = bool((wide["factor"] > 1).all()) if len(wide) else False
    at_most_1 = int((good["factor"] <= 1).sum())
    if 0.75 <= b <= 1.25 and r2 >= 0.8 and smaller_everywhere:
        verdict = HOLDS
    elif b < 0.5 or at_most_1 >= len(good) / 2:
        verdict = FAILS
    else:
        verdict = MIXED
    headline = (f"factor from {good['factor'].min():.1f}x (C={int(good.loc[good['factor'].idxmin(), 'C'])}) to "
                f"{good['factor'].max():.1f}x (C={int(good.loc[good['factor'].idxmax(), 'C'])}); "
                f"fit factor = {math.exp(a):.2f} * C^{b:.2f} (R^2 {r2:.2f}); median factor / C = "
                f"{good['factor_per_C'].median():.2f}")
    return Finding(3, reference, verdict, headline, t, {"slope": b, "coef": math.exp(a), "r2": r2})


def evaluate(summary: Any, samples: Any = None, env: dict[str, Any] | None = None) -> list[Finding]:
    """Every claim against every reference present in the run (claim 4 where the run has
    the 8-bit channel grid; ``env`` says whether its CPU has dot-product instructions)."""
    grid = int8.is_crossover(summary)
    extra = [int8.claim_crossover(summary, samples, env)] if grid.any() else []
    summary = summary[~grid]
    present = set(summary["algorithm"])
    findings = []
    for ref in REFERENCES:
        if ref not in present or "indirect" not in present:
            for n in (1, 2, 3):
                findings.append(Finding(n, ref, UNTESTED, f"{ref if ref not in present else 'indirect'} was not run",
                                        None))
            continue
        findings.append(claim_speed_im2col_layers(summary, samples, ref))
        findings.append(claim_speed_pointwise(summary, samples, ref))
        findings.append(claim_memory(summary, ref))
    return sorted(findings, key=lambda f: (f.claim, REFERENCES.index(f.reference))) + extra


# -- the report ---------------------------------------------------------------------------


def verdict_table(findings: list[Finding], labels: dict[str, str] = REFERENCE_LABEL) -> list[str]:
    """The claims x references table of verdicts (claims 1-3)."""
    by = {(f.claim, f.reference): f for f in findings}
    rows = [[str(n), CLAIMS[n], *(f"**{f.verdict}**: {f.headline}" if f else "-"
                                  for f in (by.get((n, ref)) for ref in REFERENCES))] for n in (1, 2, 3)]
    return _md_table(["#", "claim (paper)", *[labels[r] for r in REFERENCES]], rows)


def render_report(results: Any, findings: list[Finding] | None = None, plots_dir: str = "plots") -> str:
    """The markdown of ``report.md`` for a results folder (:class:`convbench.results.Results`).

    Figures are those in the folder's ``plots/``, linked as ``{plots_dir}/NAME.png``:
    ``plots`` in report.md (beside it); a notebook passes the path from its own folder.
    """
    from ..results.io import read_phases

    everything, results = results, headline_results(results)  # verdicts never pool machines
    env, summary = results.env, results.summary
    if findings is None:
        findings = evaluate(headline_cases(summary), results.samples, env)
    cpu = (env.get("cpu") or {}).get("model") or "an unknown CPU"
    in8 = int8.is_int8(summary)
    labels = INT8_LABEL if in8 else REFERENCE_LABEL
    lines = [f"# Reproducing the Indirect Convolution paper{' in 8-bit (u8s8)' if in8 else ''} on {cpu}", "",
             f"Paper: {PAPER}. Results folder: `{results.path}`; generated {datetime.now():%Y-%m-%d %H:%M}.", ""]
    if env.get("quick"):
        lines += ["> **Quick run** (`--quick`): a few layers and a few samples each. It checks that everything "
                  "runs; its intervals are wide and its verdicts are not a measurement.", ""]
    lines += ["## Machine", "", *machine_lines(env), ""]
    counts = summary["status"].value_counts().to_dict()
    lines += [f"{len(summary)} cases ({', '.join(f'{v} {k}' for k, v in counts.items())}), "
              f"{summary['layer'].nunique()} layers, threads {sorted(summary['threads'].unique().tolist())}.", ""]
    lines += ["## Verdicts", "",
              "Each claim judged against the same numba micro-kernel under im2col (the paper's method: the "
              "difference is the algorithm) and against im2col on this machine's BLAS" + (", which has no 8-bit "
              "GEMM (u8 x s8 into int32): in 8-bit the same-kernel column is the comparison." if in8 else "."), ""]
    if set(summary.get("cache", ["warm"])) == {"warm", "cold"}:
        lines += ["These verdicts are on the warm cases (the paper's setting); the cold ones follow below.", ""]
    by = {(f.claim, f.reference): f for f in findings}
    lines += verdict_table(findings, labels) + [""]
    for n in (1, 2, 3):
        lines += [f"## Claim {n}", "", f"> {CLAIMS[n]}", "", f"Rule: {RULES[n]}", ""]
        for ref in REFERENCES:
            f = by.get((n, ref))
            if f is None:
                continue
            lines += [f"### Against {labels[ref]}: {f.verdict}", "", f.headline, ""]
            lines += (memory_table(f) if n == 3 else speed_table(f)) + [""]
    lines += int8.crossover_lines(findings)
    lines += cache_sections(summary, results.samples, evaluate, verdict_table)
    lines += thread_sections(summary, results.samples, evaluate, verdict_table)
    lines += pack_share_lines(summary, read_phases(results.path))
    lines += report_lines(results)  # best convbench vs best production peer, when peers ran
    lines += machines_section(everything, evaluate, REFERENCE_LABEL)
    figures = [("headline", "Indirect against im2col + GEMM per layer class"),
               ("speedup", "Speedup over the baseline per layer"), ("memory", "Extra memory per layer"),
               ("gflops", "GFLOP/s per layer against the sgemm ceiling"), ("accuracy", "Accuracy"),
               ("roofline", "Roofline"), ("thread_scaling", "Thread scaling per layer class"),
               ("winner_map", "Fastest algorithm per layer"),
               ("network", "Network view")]
    present = [(name, label) for name, label in figures if (Path(results.path) / "plots" / f"{name}.png").is_file()]
    if present:
        lines += ["## Figures", ""]
        lines += [f"![{label}]({plots_dir}/{name}.png)" for name, label in present] + [""]
    lines += ["## How this was measured", "",
              "Speedup = median time of the reference / median time of indirect on the same layer, layout, dtype "
              "and thread count, the algorithms measured interleaved. Intervals are 95% percentile-bootstrap "
              "intervals of that ratio of medians (seeded, 2000 resamples of the per-call samples). Memory is the "
              "extra memory beyond input, weights and output: `measured_workspace_bytes` (`memory_method`) where "
              "measured, else the algorithm's analytic `workspace_bytes`. A layer \"needs im2col\" unless it is "
              "1x1, stride 1, unpadded. Regenerate with `convbench reproduce --from DIR`.", ""]
    return "\n".join(lines)


@dataclass
class ReproduceOutcome:
    """What ``reproduce``/``write_report`` made: the folder, its report.md, the figures, the verdicts."""

    out_dir: Path
    report: Path
    plots: list[Path]
    findings: list[Finding]


def write_report(results_dir: str | Path, *, draw: bool = True, formats: Any = None) -> ReproduceOutcome:
    """Draw the figures of an existing results folder and write its ``report.md``."""
    from ..plots import plot_all
    from ..results import ANALYSIS_SAMPLE_COLUMNS, read_results

    results = read_results(results_dir, samples=ANALYSIS_SAMPLE_COLUMNS)
    plots = plot_all(results_dir, formats=formats) if draw else []
    headline = headline_results(results)
    findings = evaluate(headline_cases(headline.summary), headline.samples, headline.env)
    path = Path(results_dir) / "report.md"
    path.write_text(render_report(results, findings))
    return ReproduceOutcome(Path(results_dir), path, plots, findings)


def reproduce(out: str | Path | None = None, *, quick: bool = False, monitor: Any = None,
              calibration: bool = True, formats: Any = None, cache: list[str] | None = None,
              dtype: str = "float32", threads: list[int] | None = None) -> ReproduceOutcome:
    """Run ``configs/paper.yaml`` (``quick``: :data:`QUICK_LAYERS` x :data:`QUICK_ALGORITHMS`,
    quick timing; ``cache``: the cache states, e.g. ``["warm", "cold"]``; ``dtype="u8s8"``: every
    layer 8-bit, plus claim 4's channel grid; ``threads``: the thread counts, default the
    config's, each judged in report.md), draw its figures into ``OUT/plots/`` and write
    ``OUT/report.md``."""
    from ..config import load_config
    from ..results import default_out_dir
    from ..sweep.plan import plan
    from ..sweep.session import run

    if dtype not in ("float32", int8.INT8):
        raise ValueError(f"reproduce runs dtype float32 or {int8.INT8}, got {dtype!r}")
    config = load_config(CONFIG)
    if dtype == int8.INT8:
        config = int8.int8_config(config, quick)
    layers = QUICK_LAYERS + (["crossover/*"] if dtype == int8.INT8 else []) if quick else None
    the_plan = plan(config, layers=layers, algorithms=QUICK_ALGORITHMS if quick else None, quick=quick, cache=cache,
                    threads=threads)
    if quick:  # a few more samples than a plain --quick, so every speedup has an interval
        the_plan.timing = replace(the_plan.timing, min_samples=max(the_plan.timing.min_samples, QUICK_MIN_SAMPLES))
    out_dir = Path(out) if out is not None else default_out_dir(config.name + ("-quick" if quick else ""))
    outcome = run(the_plan, out_dir, monitor=monitor, calibration=calibration,
                  argv=["convbench", "reproduce", *(["--quick"] if quick else []),
                        *(["--cache", ",".join(cache)] if cache else []), *(["--dtype", dtype] if dtype != "float32" else []),
                        *(["--threads", ",".join(map(str, threads))] if threads else [])])
    return write_report(outcome.out_dir, formats=formats)
