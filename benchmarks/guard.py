"""Per-call cost of the input guard (issue 18): the budget is 2 µs per call.

Usage::

    python benchmarks/guard.py [--calls N] [--repeats R]

Measures, in one process and interleaved repeat by repeat so a drift of the
machine hits both alike:

- ``bare``: a do-nothing call (``lambda x: x``) on a valid input;
- ``guarded``: the same call behind :func:`convbench.guard.guard_call`,
  exactly what ``algo.prepare(spec, w)`` returns around an algorithm's call;

and prints the per-call time of each (the minimum over repeats of the mean
over ``N`` calls, the usual micro-benchmark estimate: noise only adds time)
and their difference, the guard's cost. It also times a real built-in
(``indirect`` on a small layer) guarded and unguarded (``__wrapped__``) for
scale. The result is a benchmark line, not a test: a shared VM's timings do
not belong in a pass/fail check.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Callable

import numpy as np

import convbench
from convbench.guard import guard_call

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from outputs import Check, exit_code, summary_lines, write_output  # noqa: E402


def per_call(fn: Callable[[np.ndarray], object], x: np.ndarray, calls: int) -> float:
    """Mean seconds per call over ``calls`` calls."""
    t0 = time.perf_counter()
    for _ in range(calls):
        fn(x)
    return (time.perf_counter() - t0) / calls


def compare(a: Callable, b: Callable, x: np.ndarray, calls: int, repeats: int) -> tuple[float, float]:
    """(min per-call time of ``a``, of ``b``), measured alternately."""
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(per_call(a, x, calls))
        tb.append(per_call(b, x, calls))
    return min(ta), min(tb)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="calls per repeat (default 200000)")
    parser.add_argument("--repeats", type=int, default=7, help="repeats (default 7)")
    parser.add_argument("--out", help="the JSON output (default: benchmarks/results/guard-DATE-CPU.json)")
    parser.add_argument("--explore", action="store_true", help="exit 0 whatever the verdict")
    args = parser.parse_args()

    spec = convbench.ConvSpec(batch=1, in_channels=8, out_channels=8, height=8, width=8,
                              kernel=3, padding=1, layout="nhwc")
    x, w = spec.random_inputs(0)
    from convbench.machine.metadata import collect_cpu

    cpu = collect_cpu()
    load = os.getloadavg()[0]
    lines = [f"cpu={cpu['model']} ({'+'.join(cpu['simd'])}) python={platform.python_version()} "
             f"numpy={np.__version__} spec={spec.describe()} load average {load:.2f}"]

    def bare(x: np.ndarray) -> np.ndarray:
        return x

    guarded = guard_call("bare", spec, bare)
    t_bare, t_guard = compare(bare, guarded, x, args.calls, args.repeats)
    call = convbench.get_algorithm("indirect").prepare(spec, w)
    call(x)  # compile first
    calls = max(1, args.calls // 100)
    t_in, t_out = compare(call.__wrapped__, call, x, calls, args.repeats)
    us = 1e6
    cost = (t_guard - t_bare) * us
    checks = [
        Check("guard overhead per call, us", value=cost, lo=cost, hi=cost, bound=2.0, kind="ceiling",
              note=f"minimum over {args.repeats} repeats of {args.calls} calls, load average {load:.2f}"),
        Check("bare call, us", value=t_bare * us, lo=t_bare * us, hi=t_bare * us, kind="record"),
        Check("guarded call, us", value=t_guard * us, lo=t_guard * us, hi=t_guard * us, kind="record"),
        Check("indirect unguarded, us", spec.describe(), t_in * us, t_in * us, t_in * us, kind="record"),
        Check("indirect guarded, us", spec.describe(), t_out * us, t_out * us, t_out * us, kind="record"),
    ]
    lines += [f"{c.check:34s} {c.layer:24s} {c.value:8.3f}  {c.verdict}" for c in checks]
    lines += summary_lines(checks)
    text = "\n".join(lines)
    print(text)
    path = write_output("guard", __file__, checks, text, out=args.out, data={"load_average": load})
    print(f"output: {path}")
    return exit_code(checks, args.explore)


if __name__ == "__main__":
    raise SystemExit(main())
