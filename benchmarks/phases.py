"""Phases and cold caches on a real sweep (issue 23): do the phases add up, what do they and
cold runs cost, and how does cold change indirect's gain over im2col-numba?

Usage::

    python benchmarks/phases.py [CONFIG] [--algorithms a,b,...] [--layers GLOB,...] [--from DIR]
                                [--explore] [-- RUN-OPTIONS]

Runs ``convbench run CONFIG`` (default ``configs/paper.yaml``) three times,
one after another, each into its own folder: warm without the phase pass
(``--no-phases``), warm with it (the default), and warm + cold
(``--cache warm,cold``). ``--from DIR`` takes the phases and the warm/cold
medians from an existing warm + cold run of the config instead (e.g. the
shipped ``convbench reproduce --cache warm,cold``), and the three runs, on
``--layers``, then only measure what phases and cold caches cost. Judges:

- the share of ok cases whose phase medians add up to within +-10% of the
  whole call (floor >= 90%), warm and cold apart;
- the run time the phase pass adds (floor <= 25%) and what a warm + cold
  sweep costs against a warm one (floor <= 2.5x), both with phases;
- cold slower than warm on layers whose operands (input, weights, output)
  exceed the last-level cache: the share of such cases whose cold median is
  above the warm one (a record, per algorithm);
- for the record, per layer class, indirect's speedup over im2col-numba
  warm and cold (geometric mean over layers) and im2col-numba's pack share.

Run times are wall clock of whole runs on a shared machine: one sample
each, judged as exact numbers. Writes its checks, with the commit and a hash
of this script, to ``benchmarks/results/phases-DATE-CPU.json`` and exits 1
when a floor fails (``--explore``: 0).
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

ROOT = Path(__file__).resolve().parent.parent
ADD_UP = 0.10


def run(config: str, out: Path, options: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "convbench.cli", "run", config, "--out", str(out), *options],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def share_check(name: str, k: int, n: int, bound: float, kind: str = "floor") -> Check:
    v = k / n if n else float("nan")
    return Check(name, value=v, lo=v, hi=v, bound=bound, kind=kind, extra={"k": k, "n": n, "percent": True},
                 measured=n > 0, note="" if n else "no case to count")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config", nargs="?", default=str(ROOT / "configs" / "paper.yaml"))
    ap.add_argument("--algorithms", default="im2col,im2col-numba,indirect,winograd-f4,fft")
    ap.add_argument("--layers", default=None)
    ap.add_argument("--keep", metavar="DIR", help="keep the three results folders under DIR")
    ap.add_argument("--from", dest="source", metavar="DIR",
                    help="judge the phases and warm/cold of this warm+cold results folder")
    ap.add_argument("--out", help="the JSON output (default: benchmarks/results/phases-DATE-CPU.json)")
    ap.add_argument("--explore", action="store_true", help="exit 0 whatever the verdicts")
    args = ap.parse_args(argv)
    import pandas as pd

    from convbench.analysis.phase_report import pack_share_table
    from convbench.results import read_results
    from convbench.results.io import read_phases
    from convbench.timing import geomean

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="convbench-phases-"))
    common = ["--algorithms", args.algorithms, *(["--layers", args.layers] if args.layers else []), *extra]
    walls = {}
    for name, opts in (("warm, no phases", ["--no-phases"]), ("warm", []), ("warm+cold", ["--cache", "warm,cold"])):
        walls[name] = run(args.config, root / name.replace(" ", "").replace(",", "-"), common + opts)
        print(f"  {name:16s} {walls[name]:7.1f} s", file=sys.stderr, flush=True)
    both = Path(args.source) if args.source else root / "warm+cold"
    res = read_results(both, samples=False)
    s, ph = res.summary, read_phases(both)
    ok = s[s["status"] == "ok"]
    checks = []
    for state in ("warm", "cold"):
        part = ok[ok["cache"] == state]
        near = (part["phase_sum_ratio"] - 1).abs() <= ADD_UP
        checks.append(share_check(f"phases add up within +-10%, {state}", int(near.sum()), len(part), 0.90))
    cost = walls["warm"] / walls["warm, no phases"]
    checks.append(Check("run time with phases / without", value=cost, lo=cost, hi=cost, bound=1.25, kind="ceiling",
                        note=f"{walls['warm']:.0f} s against {walls['warm, no phases']:.0f} s"))
    cold_cost = walls["warm+cold"] / walls["warm"]
    checks.append(Check("run time warm+cold / warm", value=cold_cost, lo=cold_cost, hi=cold_cost, bound=2.5,
                        kind="ceiling", note=f"{walls['warm+cold']:.0f} s against {walls['warm']:.0f} s"))
    llc = (res.env.get("cold_cache") or {}).get("cache_sizes", {}).get("llc_bytes")
    keys = ["layer", "algorithm", "layout", "dtype", "threads"]
    wide = ok.pivot_table(index=keys, columns="cache", values="time_median_s").dropna()
    if isinstance(llc, int) and len(wide):
        from convbench.results.schema import spec_of

        info = ok.drop_duplicates(keys).set_index(keys)
        specs = [spec_of(r) for r in info.reset_index().to_dict("records")]
        operands = pd.Series([sp.input_bytes + sp.weight_bytes + sp.output_bytes for sp in specs], index=info.index)
        large = wide[operands.reindex(wide.index) > llc]
        for algo, g in large.groupby(level="algorithm"):
            slower = int((g["cold"] > g["warm"]).sum())
            checks.append(share_check(f"cold slower than warm, operands > LLC, {algo}", slower, len(g),
                                      float("nan"), "record"))
    t = pack_share_table(s, ph)
    for (cls, state), g in t.groupby(["layer_class", "cache"], sort=False):
        gm = float(geomean(g["measured"]))
        checks.append(Check(f"indirect / im2col-numba, {state}", f"{cls} ({len(g)} variants)", gm, gm, gm,
                            kind="record", extra={"pack_share_median": float(np.median(g["pack_share"]))}))
    lines = [f"# {args.config} ({args.algorithms}; layers {args.layers or 'all'}; {' '.join(extra)}): "
             f"three runs for the costs; phases and warm/cold from {both}; LLC {llc} bytes"]
    for c in checks:
        shown = (fraction(c.extra["k"], c.extra["n"], c.bound * 100 if c.kind == "floor" else None)
                 if "k" in c.extra else f"{c.value:.3g}")
        lines.append(f"{c.check:58s} {c.layer:28s} {shown:>18s}  {c.kind} {c.bound:g}  {c.verdict}")
    lines += summary_lines(checks)
    text = "\n".join(lines)
    print(text)
    path = write_output("phases", __file__, checks, text, out=args.out,
                        data={"walls_s": walls, "config": args.config, "algorithms": args.algorithms,
                              "layers": args.layers, "source": str(both)})
    print(f"output: {path}")
    return exit_code(checks, args.explore)


if __name__ == "__main__":
    raise SystemExit(main())
