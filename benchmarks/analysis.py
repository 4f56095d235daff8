"""Speed floors of the analysis commands on big runs (issue 16).

Usage::

    python benchmarks/analysis.py [RESULTS_DIR] [--copies 1,50] [--repeat 1] [--parquet] [--out FILE]

Builds, in a temporary folder, an N-times replicated copy of a results folder
(default ``results/paper``): every layer appears N times, renamed
``cNN_<layer>`` (so layer families stay families, N times as many), with its
summary rows and samples, case ids and indices made unique. Then times each
command as a user runs it, a cold process (``python -m convbench.cli``):

- ``select DIR``
- ``compare DIR DIR`` (the run against itself: every case is matched, every
  CI and U test computed)
- ``plot DIR --out TMP`` (every figure, the default format)
- ``report DIR`` (the self-contained HTML page, every figure drawn again)

with wall time and the peak resident memory of that process (``wait4``'s
``ru_maxrss``). ``--parquet`` also converts the copy (``convbench convert``)
and times the three commands again on it. The floors of issue 16 are
checked: on one copy plot <= 10 s, compare <= 3 s, select <= 3 s; on 50
copies each <= 60 s and <= 2 GiB; ``report`` <= 30 s on any copy count up to
25,600 cases and more (issue 26's floor), its page's size recorded. The table names the CPU and the load
average at the start and end (timings on a shared machine move with it).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from outputs import Check, exit_code, summary_lines, write_output  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
#: (command, copies <= 1) -> floor in seconds; memory floor for every command.
FLOORS_1 = {"select": 3.0, "compare": 3.0, "plot": 10.0, "report": 30.0}
FLOOR_MANY_S = 60.0
#: The HTML page's floor holds at every size.
FLOOR_REPORT_S = 30.0
FLOOR_MEM_GIB = 2.0


def replicate(src: Path, dst: Path, copies: int) -> Path:
    """Write ``copies`` renamed copies of the results folder ``src`` into ``dst``."""
    dst.mkdir(parents=True)
    for name in ("env.json", "config.yaml"):
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)
    summary = pd.read_csv(src / "summary.csv", keep_default_na=True)
    samples = pd.read_csv(src / "samples.csv", keep_default_na=True)
    n_cases = int(summary["case_index"].max()) + 1
    for k in range(copies):
        prefix = f"c{k:02d}_"
        for df, path in ((summary, dst / "summary.csv"), (samples, dst / "samples.csv")):
            out = df.copy()
            out["layer"] = prefix + out["layer"].astype(str)
            out["case_id"] = prefix + out["case_id"].astype(str)  # case ids start with the layer name
            out["case_index"] = out["case_index"] + k * n_cases
            out.to_csv(path, mode="a", header=k == 0, index=False)
    return dst


@dataclass
class Timing:
    copies: int
    fmt: str
    command: str
    wall_s: float
    peak_mib: float
    rc: int

    def floor(self) -> float:
        if self.command == "report":
            return FLOOR_REPORT_S
        return FLOORS_1[self.command] if self.copies <= 1 else FLOOR_MANY_S


def timed(args: list[str], copies: int, fmt: str, command: str) -> Timing:
    """Run ``python -m convbench.cli ARGS`` cold; wall time and its own peak RSS."""
    env = dict(os.environ, COLUMNS="200")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "convbench.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        print(f"  {command} failed ({rc}): {err.strip()[-400:]}", file=sys.stderr)
    proc.returncode = rc
    return Timing(copies, fmt, command, wall, usage.ru_maxrss / 1024, rc)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="?", default=str(ROOT / "results" / "paper"))
    parser.add_argument("--copies", default="1,50", help="comma-separated replication counts")
    parser.add_argument("--repeat", type=int, default=1, help="time each command this many times (best kept)")
    parser.add_argument("--parquet", action="store_true", help="also convert to Parquet and time again")
    parser.add_argument("--out", help="the JSON output (default: benchmarks/results/analysis-DATE-CPU.json)")
    parser.add_argument("--explore", action="store_true", help="exit 0 whatever the verdicts")
    args = parser.parse_args()
    src = Path(args.results)
    copies = [int(c) for c in args.copies.split(",")]
    lines = [f"cpu={cpu_name()} cores={os.cpu_count()} python={platform.python_version()} "
             f"source={src.name} load(1,5,15 min) at start={load()}"]
    rows: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="convbench-analysis-") as tmp:
        for n in copies:
            t0 = time.perf_counter()
            folder = replicate(src, Path(tmp) / f"x{n}", n)
            size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
            n_cases = len(pd.read_csv(folder / "summary.csv", usecols=["case_id"]))
            print(f"{n} copies: {n_cases} cases, {size:.0f} MiB of CSV, built in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)
            lines.append(f"copies={n}: {n_cases} cases, {size:.0f} MiB CSV")
            fmts = ["csv"] + (["parquet"] if args.parquet else [])
            for fmt in fmts:
                if fmt == "parquet":
                    conv = timed(["convert", str(folder), "--to", "parquet"], n, fmt, "convert")
                    lines.append(f"copies={n}: convert --to parquet {conv.wall_s:.1f} s, peak {conv.peak_mib:.0f} MiB")
                for command, cmd_args in (
                    ("select", ["select", str(folder)]),
                    ("compare", ["compare", str(folder), str(folder)]),
                    ("plot", ["plot", str(folder), "--out", str(Path(tmp) / f"plots{n}{fmt}")]),
                    ("report", ["report", str(folder)]),
                ):
                    best = min((timed(cmd_args, n, fmt, command) for _ in range(args.repeat)),
                               key=lambda t: (t.rc != 0, t.wall_s))
                    print(f"  {fmt:8s} {command:8s} {best.wall_s:6.1f} s  {best.peak_mib:6.0f} MiB", file=sys.stderr)
                    rows.append(best)
                    if command == "report" and (folder / "report.html").is_file():
                        page_mib = (folder / "report.html").stat().st_size / 2**20
                        lines.append(f"copies={n}: report.html {page_mib:.1f} MiB")
            shutil.rmtree(folder)
    lines.append(f"load at end={load()}")
    lines.append(f"{'copies':>6} {'format':8} {'command':8} {'wall s':>7} {'floor s':>7} {'peak MiB':>8}")
    checks: list[Check] = []
    for r in rows:
        lines.append(f"{r.copies:6d} {r.fmt:8} {r.command:8} {r.wall_s:7.1f} {r.floor():7.0f} {r.peak_mib:8.0f}")
        where = f"{r.copies} cop{'y' if r.copies == 1 else 'ies'}, {r.fmt}"
        if r.rc != 0:
            checks.append(Check(f"{r.command}, wall s", where, measured=False, note=f"exited {r.rc}"))
            continue
        checks.append(Check(f"{r.command}, wall s", where, r.wall_s, r.wall_s, r.wall_s, r.floor(), "ceiling"))
        mib = r.peak_mib
        checks.append(Check(f"{r.command}, peak MiB", where, mib, mib, mib, FLOOR_MEM_GIB * 1024, "ceiling"))
    lines += summary_lines(checks)
    text = "\n".join(lines) + "\n"
    print(text)
    path = write_output("analysis", __file__, checks, text, out=args.out, data={"source": src.name})
    print(f"output: {path}")
    return exit_code(checks, args.explore)


if __name__ == "__main__":
    sys.exit(main())
