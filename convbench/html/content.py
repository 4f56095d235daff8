"""The sections of a run's page: what ran and on what, warnings, verdicts, figures, every case."""

from __future__ import annotations

import math
import re
from typing import Any

from ..results.schema import flag
from .page import Markup, card, esc, num, table

#: The case table's columns, as the page shows them.
CASE_COLUMNS = ["layer", "layer_class", "algorithm", "layout", "dtype", "threads", "cache", "status",
                "time_median_s", "time_ci_low_s", "time_ci_high_s", "gflops", "speedup_vs_baseline",
                "max_rel_err", "peak_bytes", "implementation", "unstable", "contended", "retaken", "phases_add_up",
                "reason"]


def header(env: dict, title: str) -> str:
    cb = env.get("convbench") or {}
    dirty = " (uncommitted changes)" if cb.get("dirty") else ""
    argv = " ".join(env.get("argv") or []) or "?"
    quick = "<div class=\"warn\">A quick run (<code>--quick</code>): a smoke test, not a measurement.</div>" \
        if env.get("quick") else ""
    return (f"<h1>{esc(title)}</h1><p class=\"sub\">{esc(env.get('start_time') or '?')} to "
            f"{esc(env.get('end_time') or '?')}; <code>{esc(argv)}</code>; convbench {esc(cb.get('version', '?'))}, "
            f"commit {esc((cb.get('commit') or '?')[:12])}{esc(dirty)}</p>{quick}")


def machine(env: dict) -> str:
    cpu, thr = env.get("cpu") or {}, env.get("threads") or {}
    noise = ((env.get("noise") or {}).get("verdict") or {})
    caches = (cpu.get("caches") or {})
    cfg = env.get("kernel_config") or {}
    cold = env.get("cold_cache") or {}
    sgemm = ((env.get("calibration") or {}).get("sgemm_gflops") or {})
    items = [
        ("CPU", f"{cpu.get('model') or '?'} ({cpu.get('logical_cores') or '?'} logical cores)"),
        ("vector extensions", ", ".join(cpu.get("simd") or []) or "?"),
        ("caches", ", ".join(f"{k[:-6].upper()} {v // 1024} KiB" for k, v in caches.items()
                             if k in ("l1d_bytes", "l2_bytes", "l3_bytes") and isinstance(v, int)) or "?"),
        ("kernel configuration", f"{cfg.get('name', '?')} (source: {cfg.get('source', '?')})"),
        ("BLAS", f"{thr.get('blas') or '?'} {thr.get('blas_version') or ''}"),
        ("sgemm", ", ".join(f"{v} GFLOP/s on {k} thread(s)" for k, v in sgemm.items()) or "not measured"),
        ("noise probe", f"{noise.get('level', 'not measured')}" + (f": {'; '.join(noise.get('advice') or [])}"
                                                                     if noise.get("advice") else "")),
    ]
    if cold:
        items.append(("cold caches", cold.get("detail") or cold.get("method")))
    return "<h2 id=\"machine\">The machine</h2>" + card(items)


def warnings(summary: Any, env: dict) -> str:
    out = []
    level = ((env.get("noise") or {}).get("verdict") or {}).get("level")
    if level and level != "quiet":
        out.append(f"<div class=\"warn\">The noise probe called this machine <b>{esc(level)}</b> when the run "
                   "started: its numbers move more between runs than a quiet machine's.</div>")
    bad = summary[~summary["status"].isin(["ok", "skipped"])]
    if len(bad):
        rows = [[r["layer"], r["algorithm"], r["layout"], r["status"], r["reason"]]
                for r in bad.head(50).to_dict("records")]
        more = f" (the first 50 of {len(bad)})" if len(bad) > 50 else ""
        out.append(f"<div class=\"bad\">{len(bad)} case(s) did not end ok{more}; no figure or verdict counts "
                   f"them as wins.</div>" + table(["layer", "algorithm", "layout", "status", "reason"], rows))
    for col, what in (("unstable", "unstable: the reference kernel moved beyond 10% while they ran, "
                                   "even when measured again"),
                      ("contended", "contended: other processes took the cores while they ran")):
        n = int(flag(summary, col).sum())
        if n:
            out.append(f"<div class=\"warn\">{n} case(s) {what}.</div>")
    if "phases_add_up" in summary.columns:
        off = summary[(summary["status"] == "ok") & (summary["phases_add_up"].astype(str) == "False")]
        if len(off):
            out.append(f"<div class=\"warn\">{len(off)} case(s) whose phases do not add up to the whole call "
                       "within 15% (<code>phase_sum_ratio</code>): their phase shares are approximate.</div>")
    return "<h2 id=\"warnings\">Warnings</h2>" + ("".join(out) or "<p class=\"ok\">None.</p>")


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")


def markdown_table(lines: list[str]) -> str:
    """A markdown pipe table (as report.md writes them) as an HTML table."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if line.startswith("|")]
    rows = [r for r in rows if not all(set(c) <= set("-: ") for c in r)]
    if not rows:
        return ""

    def cell(text: str) -> Markup:
        return Markup(_CODE.sub(r"<code>\1</code>", _BOLD.sub(r"<b>\1</b>", esc(text))))

    return table(rows[0], [[cell(c) for c in r] for r in rows[1:]])


def best_per_layer(selection: Any) -> str:
    rows = []
    for r in selection.to_dict("records"):
        tie = "" if r.get("clear_winner") else " (tie)"
        rows.append([r["layer"], r["layout"], r["dtype"], r["threads"], r.get("cache", "warm"),
                     (r["algorithm"] or "none ok") + tie, num(r["time_median_s"] * 1e3 if r["algorithm"] else None),
                     r.get("runner_up") or "-", num(r.get("margin"), ".2f")])
    return table(["layer", "layout", "dtype", "threads", "cache", "best", "median, ms", "runner-up", "margin"],
                 rows, numeric=(6, 8))


def network(comparison: Any) -> str:
    if not len(comparison):
        return ""
    df = comparison.assign(partial=~comparison["complete"].astype(bool))
    keys = [k for k in ("layout", "dtype", "threads", "cache") if k in df.columns]
    rows = []
    for r in df.sort_values([*keys, "partial", "total_s"]).to_dict("records"):
        total = num(r["total_s"] * 1e3) + ("" if r["complete"] else " (partial)")
        rows.append([*(r[k] for k in keys), r["choice"], total, f"{r['layers_ok']}/{r['layers']}",
                     num(r.get("vs_best"), ".2f")])
    return ("<p>Complete totals first, fastest first; a partial total leaves out layers the choice did not "
            "run, so it is not a network time and is never ranked above a complete one.</p>"
            + table([*keys, "choice", "total, ms", "layers ok", "vs best per layer"], rows, numeric=(len(keys) + 1,)))


#: Columns the case table adds when the run has 8-bit rows (after ``max_rel_err``).
CASE_COLUMNS_8BIT = ["max_abs_err_lsb", "quant"]


def case_rows(summary: Any) -> tuple[list[str], list[list[Any]]]:
    """The case table's headers and rows. Rates are headed by their unit: GFLOP/s, GOP/s for
    8-bit (u8s8) rows, both named when a run has both; 8-bit runs add their error in LSB and
    their quantization parameters."""
    from ..plots._common import is_8bit, rate_unit

    dtypes = summary["dtype"].astype(str).unique() if "dtype" in summary.columns else []
    wanted = list(CASE_COLUMNS)
    if any(is_8bit(d) for d in dtypes):
        at = wanted.index("max_rel_err") + 1
        wanted[at:at] = CASE_COLUMNS_8BIT
    cols = [c for c in wanted if c in summary.columns]
    rows = []
    for rec in summary[cols].to_dict("records"):
        rows.append([_plain(rec[c]) for c in cols])
    unit = rate_unit(dtypes)
    return [unit if c == "gflops" and unit != "GFLOP/s" else c for c in cols], rows


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "item"):
        v = v.item()
    return v if isinstance(v, (int, float, str, bool)) else str(v)
