"""Do the numbers repeat? Run one config twice and count what agrees.

    python benchmarks/repeatability.py configs/mobilenet.yaml [--layers 'conv_pw_*'] [-- RUN-OPTIONS...]

Runs ``convbench run CONFIG`` twice, back to back, each into its own folder
(arguments after ``--`` go to both runs, e.g. ``-- --repeat 5``), then prints,
with the machine named:

- the share of cases whose ``speedup_vs_baseline`` agrees within +-10%,
  and the share whose median time does;
- the share of (layer, layout, dtype, threads) cells with the same winner,
  and with the same winner or a tie (the two best within 3% in either run);
- the share of cases ``convbench compare`` calls other than "same" (false
  alarms: nothing changed between the runs);
- each run's wall time.

``--load N`` starts N busy-loop processes for the second run (each busy for
50 ms, then idle for 50 ms: a 50% duty, on any core the scheduler picks);
each stops by itself when the run ends, or after an hour at most. Then the
checks say how far a busy machine moves the numbers, and how many cases the
run flagged ``contended`` (a case outside the +-10% band that is flagged
counts as said, not as silently wrong).

It writes its checks with the commit and a hash of this script to
``benchmarks/results/repeatability-DATE-CPU.json`` and exits 1 when a floor
fails (``--explore``: 0).

The floors of the "Repeatable numbers" issue: >= 90% of speedups within
+-10%, the same winner in >= 95% of cells, <= 5% false alarms.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from outputs import Check, exit_code, fraction, summary_lines, write_output  # noqa: E402

TOLERANCE = 0.10
TIE = 0.03


_BUSY = """
import os, sys, time
parent, end = int(sys.argv[1]), time.monotonic() + 3600
while time.monotonic() < end and os.getppid() == parent:
    t = time.perf_counter() + 0.05
    while time.perf_counter() < t:
        pass
    time.sleep(0.05)
"""


def busy_loops(n: int) -> list[subprocess.Popen]:
    """``n`` bounded 50%-duty busy loops (they stop when this process dies, or after an hour)."""
    import os

    return [subprocess.Popen([sys.executable, "-c", _BUSY, str(os.getpid())]) for _ in range(n)]


def run_once(config: str, out: Path, extra: list[str]) -> float:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "convbench.cli", "run", config, "--out", str(out), *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def agreement(a, b) -> dict[str, float]:
    """Shares of cases / cells that agree between two runs' summaries."""
    import pandas as pd

    from convbench.results.schema import CASE_KEYS, VARIANT_KEYS

    both = pd.merge(a[a.status == "ok"], b[b.status == "ok"], on=CASE_KEYS, suffixes=("_a", "_b"))
    time_ratio = both.time_median_s_b / both.time_median_s_a
    speed = both[both.algorithm != both.baseline_a]
    speed_ratio = speed.speedup_vs_baseline_b / speed.speedup_vs_baseline_a
    flagged = speed["contended_b"].map(lambda v: v is True or str(v) == "True") if "contended_b" in speed \
        else np.zeros(len(speed), bool)
    same = tie = cells = 0
    for _, g in both.groupby(VARIANT_KEYS):
        ga, gb = g.sort_values("time_median_s_a"), g.sort_values("time_median_s_b")
        cells += 1
        win_a, win_b = ga.algorithm.iloc[0], gb.algorithm.iloc[0]
        same += win_a == win_b
        close_a = len(ga) > 1 and ga.time_median_s_a.iloc[1] / ga.time_median_s_a.iloc[0] - 1 <= TIE
        close_b = len(gb) > 1 and gb.time_median_s_b.iloc[1] / gb.time_median_s_b.iloc[0] - 1 <= TIE
        tie += win_a == win_b or close_a or close_b
    return {
        "cases": int(len(both)),
        "speedups": int(len(speed)),
        "speedup_within": int(np.sum(np.abs(speed_ratio - 1) <= TOLERANCE)),
        "speedup_within_or_flagged": int(np.sum((np.abs(speed_ratio - 1) <= TOLERANCE) | np.asarray(flagged))),
        "contended_b": int(np.sum(b["contended"].map(lambda v: v is True or str(v) == "True")))
        if "contended" in b else 0,
        "retaken_b": int(b["retaken"].fillna(0).sum()) if "retaken" in b else 0,
        "time_within": int(np.sum(np.abs(time_ratio - 1) <= TOLERANCE)),
        "cells": cells,
        "same_winner": int(same),
        "same_winner_or_tie": int(tie),
    }


def false_alarms(dir_a: Path, dir_b: Path) -> tuple[int, int]:
    from convbench.analysis.compare import compare_runs
    from convbench.results import read_results

    table = compare_runs(read_results(dir_a), read_results(dir_b)).table
    judged = table[table.verdict != "n/a"]
    return int(np.sum(judged.verdict != "same")), int(len(judged))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--keep", metavar="DIR", help="keep both results folders under DIR")
    parser.add_argument("--out", help="the JSON output (default: benchmarks/results/repeatability-DATE-CPU.json)")
    parser.add_argument("--explore", action="store_true", help="exit 0 whatever the verdicts")
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="run N busy-loop processes (50%% duty) during the second run")
    args = parser.parse_args(argv)

    from convbench.results import read_results

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="convbench-repeat-"))
    dirs = [root / "run-a", root / "run-b"]
    walls = [run_once(args.config, dirs[0], extra)]
    loads = busy_loops(args.load)
    try:
        walls.append(run_once(args.config, dirs[1], extra))
    finally:
        for proc in loads:
            proc.kill()
            proc.wait()
    a, b = (read_results(d) for d in dirs)
    st = agreement(a.summary, b.summary)
    alarms, judged = false_alarms(*dirs)
    cpu = (a.env.get("cpu") or {}).get("model")
    cores = (a.env.get("cpu") or {}).get("logical_cores")
    verdict = ((a.env.get("noise") or {}).get("verdict") or {}).get("level")

    def share(name: str, k: int, n: int, bound: float, kind: str = "floor") -> Check:
        v = k / n if n else float("nan")
        return Check(name, value=v, lo=v, hi=v, bound=bound, kind=kind,
                     extra={"k": k, "n": n, "percent": True})

    checks = [
        share("speedups within +-10% between the runs", st["speedup_within"], st["speedups"], 0.90),
        share("speedups within +-10%, or flagged contended in run 2", st["speedup_within_or_flagged"],
              st["speedups"], 0.90),
        share("cases flagged contended in run 2", st["contended_b"], len(b.summary), float("nan"), "record"),
        Check("samples retaken in run 2", value=st["retaken_b"], lo=st["retaken_b"], hi=st["retaken_b"],
              kind="record"),
        share("same winner per (layer, layout, dtype, threads)", st["same_winner"], st["cells"], 0.95),
        share("same winner or a tie (<= 3%)", st["same_winner_or_tie"], st["cells"], float("nan"), "record"),
        share("median times within +-10% between the runs", st["time_within"], st["cases"], float("nan"), "record"),
        share("compare false alarms", alarms, judged, 0.05, "ceiling"),
    ] + [Check(f"wall time of run {i + 1}, s", value=w, lo=w, hi=w, kind="record") for i, w in enumerate(walls)]
    lines = [f"# {args.config} {' '.join(extra)}: two runs on {cpu} ({cores} vCPUs; noise probe: {verdict}; "
             f"{args.load} busy loop(s) during run 2); "
             f"{st['cases']} cases ok in both"]
    for c in checks:
        shown = fraction(c.extra["k"], c.extra["n"], c.bound * 100 if c.kind == "floor" else None) \
            if "k" in c.extra else f"{c.value:.1f}"
        lines.append(f"{c.check:50s} {shown:>18s}  {c.kind} {c.bound:g}  {c.verdict}")
    lines += summary_lines(checks)
    text = "\n".join(lines)
    print(text)
    path = write_output("repeatability", __file__, checks, text, out=args.out,
                        data={"config": args.config, "run_options": extra, "noise": verdict, "load": args.load, **st})
    print(f"output: {path}")
    return exit_code(checks, args.explore)


if __name__ == "__main__":
    raise SystemExit(main())
