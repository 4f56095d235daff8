"""What detecting and retaking preempted samples costs a sweep on a quiet machine.

    python benchmarks/contention_cost.py RUN_DIR [RUN_DIR ...]

Reads results folders of quiet runs (e.g. ``repeatability.py --keep DIR``'s
``run-a``) and adds up, per run, the time the contention code spends there,
against the time the run spent in its samples:

- the samples retaken: each case's ``retaken`` count times its mean sample
  time (a retaken sample is not kept, so its time is the case's typical one);
- the CPU-clock reads: two per sample, kept or retaken, at the cost of
  ``time.thread_time`` (one thread) or ``time.process_time`` measured here;
- the /proc/stat and /proc/self/stat reads of ``LoadMeter``: a start and a
  stop per group repetition, at their cost measured here;
- the repetitions measured again because a case was contended.

An accounting of what the code adds, rather than an A/B of two versions'
wall times, because two sweeps on these VMs differ by more than 5% on their
own. The issue's ceiling: <= 5% of the run time (#27). Writes
``benchmarks/results/contention-cost-DATE-CPU.json``; exits 1 when a run is
over the ceiling.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from outputs import Check, exit_code, summary_lines, write_output  # noqa: E402

CEILING = 0.05


def call_cost(fn, number: int = 200_000) -> float:
    """Seconds per call of ``fn``, the best of five batches."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def run_cost(folder: Path, clock_s: dict[int, float], meter_s: float) -> dict[str, float]:
    from convbench.results import read_results
    from convbench.results.schema import flag

    res = read_results(folder)
    samples, summary = res.samples, res.summary
    sample_s = samples.time_s * samples.loops
    mean_s = sample_s.groupby(samples.case_id).mean()
    retaken = summary.set_index("case_id")["retaken"].fillna(0)
    retake_s = float((retaken * mean_s.reindex(retaken.index).fillna(0)).sum())
    n_samples = len(samples) + int(retaken.sum())
    threads = samples.threads.clip(upper=2).map(lambda t: clock_s[int(t)])
    clock_total = float(2 * threads.sum() + 2 * retaken.sum() * clock_s[1])
    reps_csv = folder / "repetitions.csv"
    reps = pd.read_csv(reps_csv) if reps_csv.is_file() else pd.DataFrame()
    if len(reps) and "contended" not in reps:  # a folder from before the contention columns
        reps = reps.assign(contended=False, remeasured=reps.get("remeasured", 0))
    group = ["layer", "layout", "dtype", "threads", "repetition"]
    group_reps = len(reps.drop_duplicates(group)) if len(reps) else 0
    # a group repetition with a contended case and measured again: one more repetition's samples
    again = reps[flag(reps, "contended") & (reps["remeasured"].fillna(0) > 0)] if len(reps) else reps
    again = again.drop_duplicates(group) if len(again) else again
    per_rep_s = sample_s.groupby([samples[k] for k in group]).sum()
    remeasure_s = float(sum(per_rep_s.get(tuple(r[k] for k in group), 0.0) * r["remeasured"]
                            for _, r in again.iterrows())) if len(again) else 0.0
    total_s = float(sample_s.sum())
    return {"sample_s": total_s, "samples": n_samples, "retaken": int(retaken.sum()), "retake_s": retake_s,
            "clock_s": clock_total, "meter_s": group_reps * meter_s, "contended_repetitions": len(again),
            "remeasure_s": remeasure_s,
            "share": (retake_s + clock_total + group_reps * meter_s + remeasure_s) / total_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", help="the JSON output (default: benchmarks/results/contention-cost-DATE-CPU.json)")
    parser.add_argument("--explore", action="store_true", help="exit 0 whatever the verdicts")
    args = parser.parse_args()

    from convbench.machine.contention import LoadMeter

    clock_s = {1: call_cost(time.thread_time), 2: call_cost(time.process_time)}
    meter_s = call_cost(lambda: LoadMeter().start().stop(), number=2_000)
    lines = [f"clock reads: thread_time {clock_s[1] * 1e9:.0f} ns, process_time {clock_s[2] * 1e9:.0f} ns; "
             f"LoadMeter start+stop {meter_s * 1e6:.1f} us"]
    checks: list[Check] = []
    for run in args.runs:
        c = run_cost(Path(run), clock_s, meter_s)
        lines.append(f"{run}: {c['samples']} samples ({c['retaken']} retaken) over {c['sample_s']:.1f} s; "
                     f"retakes {c['retake_s'] * 1e3:.1f} ms, clock reads {c['clock_s'] * 1e3:.1f} ms, "
                     f"/proc reads {c['meter_s'] * 1e3:.1f} ms, contended repetitions measured again "
                     f"{c['contended_repetitions']}: {c['share']:.3%} of the sample time")
        checks.append(Check("contention code's cost, share of the run's sample time", run, c["share"], c["share"],
                            c["share"], CEILING, "ceiling", extra={k: v for k, v in c.items() if k != "share"}))
    lines += summary_lines(checks)
    text = "\n".join(lines)
    print(text)
    path = write_output("contention-cost", __file__, checks, text, out=args.out, data={"runs": args.runs})
    print(f"output: {path}")
    return exit_code(checks, args.explore)


if __name__ == "__main__":
    raise SystemExit(main())
