"""A judged claim (:class:`Finding`, the verdict words) and how ``report.md`` prints one:
percentages, speedups with their intervals, tables.

Shared by :mod:`convbench.analysis.report` (claims 1-3) and
:mod:`convbench.analysis.int8_report` (claim 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

HOLDS, FAILS, MIXED, UNTESTED = "holds", "does not hold", "mixed", "not tested"


@dataclass
class Finding:
    """One claim judged against one reference algorithm."""

    claim: int
    reference: str
    verdict: str
    headline: str  # the numbers, one line
    table: Any  # per-layer DataFrame
    extra: dict[str, Any] = field(default_factory=dict)


def fmt_pct(s: float) -> str:
    """A speedup as a signed percentage (1.25 -> "+25%"); "-" when not a number."""
    return "-" if not np.isfinite(s) else f"{(s - 1) * 100:+.0f}%"


def fmt_speedup(s: float, lo: float, hi: float) -> str:
    """A speedup and its interval: "+25% [+20%, +31%]"."""
    if not np.isfinite(s):
        return "-"
    ci = f" [{fmt_pct(lo)}, {fmt_pct(hi)}]" if np.isfinite(lo) and np.isfinite(hi) else " [no CI]"
    return f"{fmt_pct(s)}{ci}"


def md_table(header: list[str], rows: list[list[object]]) -> list[str]:
    """A markdown table's lines."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def speed_table(f: Finding) -> list[str]:
    """A speed claim's per-layer table."""
    if f.table is None or f.table.empty:
        return [f"_{f.headline}_"]
    rows = [[r["layer"], r["layer_class"], r["threads"], int(r["in_channels"]),
             f"{r['reference_time_s'] * 1e3:.3g}", f"{r['time_s'] * 1e3:.3g}",
             fmt_speedup(r["speedup"], r["ci_low"], r["ci_high"]), r["result"]]
            for r in f.table.sort_values(["layer_class", "layer"]).to_dict("records")]
    return md_table(["layer", "class", "threads", "C", f"{f.reference} (ms)", "indirect (ms)",
                     "indirect faster by [95% CI]", "result"], rows)


def memory_table(f: Finding) -> list[str]:
    """Claim 3's per-layer table of workspaces."""
    if f.table is None or f.table.empty:
        return [f"_{f.headline}_"]
    rows = [[r["layer"], r["C"], f"{r['reference_bytes'] / 1024:.1f}", f"{r['indirect_bytes'] / 1024:.1f}",
             f"{r['factor']:.2f}", f"{r['factor_analytic']:.2f}", f"{r['factor_per_C']:.3f}", r["source"]]
            for r in f.table.to_dict("records")]
    return md_table(["layer", "C", f"{f.reference} (KiB)", "indirect (KiB)", "factor", "factor (analytic)",
                     "factor / C", "bytes from"], rows)
