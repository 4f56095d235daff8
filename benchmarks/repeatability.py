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

The floors of the "Repeatable numbers" issue: >= 90% of speedups within
+-10%, the same winner in >= 95% of cells, <= 5% false alarms.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOLERANCE = 0.10
TIE = 0.03


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
        "speedup_within_10pct": float(np.mean(np.abs(speed_ratio - 1) <= TOLERANCE)) if len(speed) else float("nan"),
        "time_within_10pct": float(np.mean(np.abs(time_ratio - 1) <= TOLERANCE)) if len(both) else float("nan"),
        "cells": cells,
        "same_winner": same / cells if cells else float("nan"),
        "same_winner_or_tie": tie / cells if cells else float("nan"),
    }


def false_alarms(dir_a: Path, dir_b: Path) -> float:
    from convbench.analysis.compare import compare_runs
    from convbench.results import read_results

    table = compare_runs(read_results(dir_a), read_results(dir_b)).table
    judged = table[table.verdict != "n/a"]
    return float(np.mean(judged.verdict != "same")) if len(judged) else float("nan")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--keep", metavar="DIR", help="keep both results folders under DIR")
    args = parser.parse_args(argv)

    from convbench.results import read_results

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="convbench-repeat-"))
    dirs = [root / "run-a", root / "run-b"]
    walls = [run_once(args.config, d, extra) for d in dirs]
    a, b = (read_results(d) for d in dirs)
    stats = agreement(a.summary, b.summary)
    stats["false_alarms"] = false_alarms(*dirs)
    stats["wall_s"] = [round(w, 1) for w in walls]
    cpu = (a.env.get("cpu") or {}).get("model")
    cores = (a.env.get("cpu") or {}).get("logical_cores")
    verdict = ((a.env.get("noise") or {}).get("verdict") or {}).get("level")
    print(f"# {args.config} {' '.join(extra)}: two runs on {cpu} ({cores} vCPUs; noise probe: {verdict})")
    print(f"cases (ok in both)            {stats['cases']}")
    print(f"speedup within +-10%          {stats['speedup_within_10pct']:.0%}   (floor >= 90%)")
    print(f"median time within +-10%      {stats['time_within_10pct']:.0%}")
    print(f"same winner                   {stats['same_winner']:.0%} of {stats['cells']} cells   (floor >= 95%)")
    print(f"same winner or a tie (<= 3%)  {stats['same_winner_or_tie']:.0%}")
    print(f"compare false alarms          {stats['false_alarms']:.0%}   (floor <= 5%)")
    print(f"wall time of each run         {stats['wall_s'][0]} s, {stats['wall_s'][1]} s")
    print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
