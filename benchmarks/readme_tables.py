"""README's result tables, rendered from the benchmarks' checked-in outputs.

    python benchmarks/readme_tables.py            # rewrite every table in README.md
    python benchmarks/readme_tables.py --check    # exit 1 if a table differs or its output is stale

A table in README is a block between two markers naming its output (a
benchmark's JSON, or a ``report.md`` of ``convbench reproduce``, whose verdict
table is copied as it stands)::

    <!-- table: benchmarks/results/kernels-2026-12-05-amd-epyc.json -->
    ...rendered here, never edited by hand...
    <!-- /table -->

Each output (written by ``benchmarks/outputs.write_output``) carries the
hash of the script that measured it, and of the script's own modules where it
lists them in ``data["modules"]`` (``kernels.py``: ``kernels_scaling.py``); an
output whose script or modules have changed since is *stale*, and ``--check``
(and ``tests/test_readme.py``) refuses it: rerun the benchmark, then this script.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from outputs import (FAIL, NOT_JUDGED, NOT_MEASURED, PASS, RECORD, ROOT, UNDECIDED,  # noqa: E402
                     Check, fraction, read_output, script_hash)

README = ROOT / "README.md"
MARKER = re.compile(r"(<!-- table: (?P<path>\S+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def _num(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def _ci(c: Check) -> str:
    if c.lo == c.hi == c.value or math.isnan(c.lo):
        return _num(c.value)
    return f"{_num(c.value)} [{_num(c.lo)}, {_num(c.hi)}]"


def _bound(c: Check) -> str:
    if c.kind == "record" or math.isnan(c.bound):
        return ""
    shown = f"{c.bound:g}"
    if c.extra.get("percent"):
        shown = f"{c.bound * 100:g}%"
    return (">= " if c.kind == "floor" else "<= ") + shown


def _result(c: Check) -> str:
    if "k" in c.extra and "n" in c.extra:  # a count: never rounded across its floor
        floor = c.bound * 100 if c.kind == "floor" and not math.isnan(c.bound) else None
        return fraction(int(c.extra["k"]), int(c.extra["n"]), floor)
    return _ci(c)


def _phases(phases: dict[str, list[float]]) -> str:
    """A call's steps as ``step share-of-one-thread own-speedup``: where it lost the second core."""
    return "phases " + ", ".join(f"{name} {share:.0%} {ratio:.2f}x" for name, (share, ratio) in phases.items())


def _verdict_cell(group: list[Check]) -> str:
    v = [c.verdict for c in group]
    n = {k: v.count(k) for k in (PASS, UNDECIDED, FAIL, NOT_JUDGED, NOT_MEASURED, RECORD)}
    judged = n[PASS] + n[UNDECIDED] + n[FAIL]
    parts = []
    if judged:
        if n[PASS] == judged:
            parts.append(f"pass ({judged}/{judged})")
        else:
            word = "**fail**" if n[FAIL] else "**undecided**"
            parts.append(f"{word}: {n[PASS]} pass, {n[UNDECIDED]} undecided, {n[FAIL]} fail of {judged}")
    if n[NOT_JUDGED]:
        parts.append(f"{n[NOT_JUDGED]} not judged")
    if n[NOT_MEASURED]:
        parts.append(f"{n[NOT_MEASURED]} not measured")
    return "; ".join(parts) or "for the record"


def _range(group: list[Check]) -> str:
    measured = [c for c in group if c.measured and not math.isnan(c.value)]
    if not measured:
        return "-"
    if len(measured) == 1:
        return _result(measured[0])
    lo, hi = min(c.value for c in measured), max(c.value for c in measured)
    low_ci = min(c.lo for c in measured)
    return f"{_num(lo)}-{_num(hi)} (lowest CI bound {_num(low_ci)})"


def render(payload: dict) -> str:
    """The markdown of one output: a line per check name (its layers summarised),
    then every check that is not a pass, with its numbers or its reason."""
    checks: list[Check] = payload["checks"]
    prov = payload["provenance"]
    groups: dict[tuple, list[Check]] = {}  # checks of one name and one bound share a line
    for c in checks:
        groups.setdefault((c.check, c.kind, None if math.isnan(c.bound) else c.bound), []).append(c)
    detail = f"{prov['cpu_detail']}, " if prov.get("cpu_detail") else ""
    lines = [f"Measured on {prov['cpu']} ({detail}{prov['logical_cpus']} logical CPUs, kernel configuration "
             f"`{prov['kernel_config']}`) by `{prov['command']}` at commit `{prov['commit'][:10]}`"
             f"{' (with uncommitted changes)' if prov.get('dirty') else ''}, {prov['date'][:10]}.",
             "",
             "| check | result (95% CI) | floor | judged on the CI |",
             "| --- | --- | --- | --- |"]
    for (name, _, _), group in groups.items():
        layers = f" ({len(group)} checks)" if len(group) > 1 else (f", {group[0].layer}" if group[0].layer else "")
        lines.append(f"| {name}{layers} | {_range(group)} | {_bound(group[0])} | {_verdict_cell(group)} |")
    weak = [c for c in checks if c.verdict in (FAIL, UNDECIDED, NOT_JUDGED, NOT_MEASURED)]
    if weak:
        steps = (" (a check that lists its call's phases gives each one's share of the one-thread call, then "
                 "its own two-thread speedup)" if any(c.extra.get("phases") for c in weak) else "")
        lines += ["", f"Every check that did not pass{steps}:", "",
                  "| check | layer | result (95% CI) | floor | verdict |", "| --- | --- | --- | --- | --- |"]
        for c in weak:
            result = c.note if c.verdict in (NOT_JUDGED, NOT_MEASURED) else _result(c)
            if c.verdict == NOT_JUDGED and c.measured:
                result = f"{_result(c)}; {c.note}"
            if c.extra.get("phases"):
                result += "; " + _phases(c.extra["phases"])
            lines.append(f"| {c.check} | {c.layer or '-'} | {result} | {_bound(c)} | {c.verdict} |")
    return "\n".join(lines) + "\n"


def stale(payload: dict) -> str | None:
    """Why an output no longer speaks for its script (``None``: it does)."""
    script = ROOT / payload["provenance"]["script"]
    if not script.is_file():
        return f"{payload['provenance']['script']} no longer exists"
    if script_hash(script) != payload["provenance"]["script_sha256"]:
        return f"{payload['provenance']['script']} (or its shared helpers) changed since this output was measured"
    for name, digest in payload.get("data", {}).get("modules", {}).items():  # the script's own modules
        module = script.parent / name
        if not module.is_file() or hashlib.sha256(module.read_bytes()).hexdigest() != digest:
            return f"benchmarks/{name}, a module of {payload['provenance']['script']}, changed since this output was measured"
    return None


def report_verdicts(path: Path) -> str:
    """The verdict table of a ``report.md`` (``convbench reproduce``), as it stands there."""
    text = path.read_text()
    start = text.find("## Verdicts")
    if start < 0:
        raise ValueError(f"{path} has no '## Verdicts' section")
    lines = text[start:].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return "\n".join(table) + "\n"


def rendered(text: str) -> tuple[str, list[str]]:
    """README ``text`` with every table rendered anew, and the problems found
    (a missing or stale output)."""
    problems: list[str] = []

    def one(m: re.Match) -> str:
        path = ROOT / m.group("path")
        if not path.is_file():
            problems.append(f"{m.group('path')}: no such output")
            return m.group(0)
        if path.suffix == ".md":  # a report's verdicts, copied as they stand in the checked-in report
            return m.group(1) + report_verdicts(path) + m.group(4)
        payload = read_output(path)
        why = stale(payload)
        if why:
            problems.append(f"{m.group('path')}: stale: {why}")
        return m.group(1) + render(payload) + m.group(4)

    return MARKER.sub(one, text), problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="only check; exit 1 on a difference or a stale output")
    args = ap.parse_args(argv)
    text = README.read_text()
    new, problems = rendered(text)
    for p in problems:
        print(p, file=sys.stderr)
    if args.check:
        if new != text:
            print("README.md's tables differ from their outputs: run python benchmarks/readme_tables.py",
                  file=sys.stderr)
        return 1 if (new != text or problems) else 0
    README.write_text(new)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
