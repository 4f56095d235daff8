"""What every benchmark with floors shares: verdicts on a CI, provenance, the output file, the exit code.

A benchmark collects :class:`Check` rows. A check is judged on its 95% CI:
``pass`` only when the whole CI clears the floor (or stays under a ceiling),
``fail`` when the whole CI misses it, ``undecided`` when the CI straddles it.
A check whose precondition does not hold is ``not judged``, one that could
not run at all is ``not measured``; both carry the reason and are counted
apart, never as passes.

:func:`write_output` saves the checks with the provenance of the run (the
commit, a hash of the script and of the helpers it judges with, the CPU,
the command line) as ``benchmarks/results/<name>-<date>-<cpu>.json``;
README's result tables are rendered from such files
(``benchmarks/readme_tables.py``), and ``tests/test_readme.py`` fails when
README cites an output whose script has changed since it was written.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import platform
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
#: The helpers every benchmark's verdicts depend on: part of each script's hash.
SHARED = ("outputs.py", "bench_common.py", "peer_checks.py")

PASS, UNDECIDED, FAIL, NOT_JUDGED, NOT_MEASURED, RECORD = (
    "pass", "undecided", "fail", "not judged", "not measured", "record")


@dataclass
class Check:
    """One line of a benchmark's table.

    ``kind``: ``floor`` (value must be >= ``bound``), ``ceiling`` (<= ``bound``)
    or ``record`` (a number for the record, no bound). ``judged=False`` with a
    ``note``: the floor's precondition does not hold here (e.g. the machine's
    sgemm does not scale); ``measured=False`` with a ``note``: it could not run.
    """

    check: str
    layer: str = ""
    value: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    bound: float = math.nan
    kind: str = "floor"
    a: str = ""
    b: str = ""
    gflops_a: float = math.nan
    gflops_b: float = math.nan
    judged: bool = True
    measured: bool = True
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if not self.measured:
            return NOT_MEASURED
        if self.kind == "record":
            return RECORD
        if not self.judged:
            return NOT_JUDGED
        return judge(self.lo, self.hi, self.bound, self.kind)


def judge(lo: float, hi: float, bound: float, kind: str = "floor") -> str:
    """``pass`` when the whole interval [lo, hi] clears ``bound``, ``fail`` when it
    wholly misses it, else ``undecided`` (NaN bounds are undecided)."""
    if kind == "ceiling":
        lo, hi, bound = -hi, -lo, -bound
    if lo >= bound:
        return PASS
    if hi < bound:
        return FAIL
    return UNDECIDED


def fraction(k: int, n: int, floor_pct: float | None = None) -> str:
    """``k/n (p%)``, with the percentage to one decimal where it lies within a point
    of ``floor_pct`` and rounded toward its true side there, so a count never
    rounds across its floor (36 of 38 is 94.7%, never 95%)."""
    if n == 0:
        return "0/0"
    pct = 100.0 * k / n
    if floor_pct is None or abs(pct - floor_pct) >= 1.0:
        return f"{k}/{n} ({pct:.0f}%)"
    shown = math.floor(pct * 10) / 10 if pct < floor_pct else pct
    return f"{k}/{n} ({shown:.1f}%)"


def counts(checks: Iterable[Check]) -> dict[str, int]:
    """How many checks have each verdict."""
    out = {v: 0 for v in (PASS, UNDECIDED, FAIL, NOT_JUDGED, NOT_MEASURED, RECORD)}
    for c in checks:
        out[c.verdict] += 1
    return out


def summary_lines(checks: list[Check]) -> list[str]:
    """The end of a benchmark's output: the counts, then every check that is not a
    pass (fails and undecided with their numbers, unjudged and unmeasured with the reason)."""
    n = counts(checks)
    judged = n[PASS] + n[UNDECIDED] + n[FAIL]
    lines = [f"summary: {n[PASS]} pass, {n[UNDECIDED]} undecided, {n[FAIL]} fail of {judged} judged checks; "
             f"{n[NOT_JUDGED]} not judged, {n[NOT_MEASURED]} not measured"]
    for c in checks:
        v = c.verdict
        if v in (FAIL, UNDECIDED):
            lines.append(f"  {v.upper():12s} {c.check} {c.layer}: {c.value:.3g} [{c.lo:.3g}, {c.hi:.3g}] "
                         f"against {c.bound:g}")
        elif v in (NOT_JUDGED, NOT_MEASURED):
            lines.append(f"  {v.upper():12s} {c.check} {c.layer}: {c.note}")
    return lines


def exit_code(checks: list[Check], explore: bool = False) -> int:
    """1 when a judged check fails (0 with ``--explore``, for people who only want numbers)."""
    return 0 if explore or not any(c.verdict == FAIL for c in checks) else 1


# -- provenance -----------------------------------------------------------------------


def script_hash(script: str | Path) -> str:
    """sha256 over the script and the shared helpers that judge its checks (:data:`SHARED`)."""
    h = hashlib.sha256()
    for p in [Path(script).resolve(), *(HERE / s for s in SHARED)]:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpuinfo() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            out.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return out


def cpu_model() -> str:
    """The CPU's model name as the OS reports it."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


#: AMD families/models a VM shows only as "AMD EPYC": (family, first model, last model) -> core.
_AMD_CORES = [(23, 0x00, 0x2F, "Zen"), (23, 0x30, 0xFF, "Zen 2"), (25, 0x00, 0x0F, "Zen 3"),
              (25, 0x10, 0x1F, "Zen 4"), (25, 0x20, 0x5F, "Zen 3"), (25, 0x60, 0xAF, "Zen 4"),
              (26, 0x00, 0xFF, "Zen 5")]


def cpu_detail() -> str:
    """What a bare model name leaves out: family and model (the core they mean, for AMD) and
    the vector extensions the kernels care about, e.g. ``family 25 model 17 (Zen 4); AVX-512, VNNI``."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    parts = []
    if info.get("cpu family") and info.get("model"):
        fam, mod = int(info["cpu family"]), int(info["model"])
        core = next((c for f, lo, hi, c in _AMD_CORES if f == fam and lo <= mod <= hi), None) \
            if "AMD" in info.get("vendor_id", "") else None
        parts.append(f"family {fam} model {mod}" + (f" ({core})" if core else ""))
    isa = [name for flag, name in (("avx512f", "AVX-512"), ("avx512_vnni", "VNNI"), ("avx_vnni", "AVX-VNNI"))
           if flag in flags] or [name for flag, name in (("avx2", "AVX2"), ("fma", "FMA")) if flag in flags]
    return "; ".join([*parts, ", ".join(isa)] if isa else parts)


def provenance(script: str | Path) -> dict[str, Any]:
    """Where an output comes from: script, its hash, commit, CPU, command, date."""
    from convbench.kernels.configs import active_config_info

    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "script": str(Path(script).resolve().relative_to(ROOT)),
        "script_sha256": script_hash(script),
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(dirty),
        "cpu": cpu_model(),
        "cpu_detail": cpu_detail(),
        "kernel_config": active_config_info().get("name"),
        "logical_cpus": __import__("os").cpu_count(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def write_output(name: str, script: str | Path, checks: list[Check], text: str,
                 data: dict[str, Any] | None = None, out: str | Path | None = None) -> Path:
    """Save a run: ``{"provenance", "checks", "text", "data"}`` as JSON (``out`` or
    ``benchmarks/results/<name>-<date>-<cpu>.json``); returns the path."""
    prov = provenance(script)
    path = Path(out) if out else RESULTS / f"{name}-{prov['date'][:10]}-{_slug(prov['cpu'])}.json"
    payload = {"provenance": prov, "checks": [dict(asdict(c), verdict=c.verdict) for c in checks],
               "text": text, "data": data or {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=_jsonable) + "\n")
    return path


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    raise TypeError(f"cannot write {type(v).__name__} to JSON")


def read_output(path: str | Path) -> dict[str, Any]:
    """A saved run, its checks as :class:`Check` objects."""
    payload = json.loads(Path(path).read_text())
    fields = set(Check.__dataclass_fields__)
    payload["checks"] = [Check(**{k: v for k, v in c.items() if k in fields}) for c in payload["checks"]]
    return payload
