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
import platform
import time
from typing import Callable

import numpy as np

import convbench
from convbench.guard import guard_call


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="calls per repeat (default 200000)")
    parser.add_argument("--repeats", type=int, default=7, help="repeats (default 7)")
    args = parser.parse_args()

    spec = convbench.ConvSpec(batch=1, in_channels=8, out_channels=8, height=8, width=8,
                              kernel=3, padding=1, layout="nhwc")
    x, w = spec.random_inputs(0)
    from convbench.machine.metadata import collect_cpu

    cpu = collect_cpu()
    print(f"cpu={cpu['model']} ({'+'.join(cpu['simd'])}) python={platform.python_version()} "
          f"numpy={np.__version__} spec={spec.describe()}")

    def bare(x: np.ndarray) -> np.ndarray:
        return x

    guarded = guard_call("bare", spec, bare)
    t_bare, t_guard = compare(bare, guarded, x, args.calls, args.repeats)
    print(f"bare call        {t_bare * 1e6:8.3f} µs/call")
    print(f"guarded call     {t_guard * 1e6:8.3f} µs/call")
    print(f"guard overhead   {(t_guard - t_bare) * 1e6:8.3f} µs/call  (budget 2 µs)")

    call = convbench.get_algorithm("indirect").prepare(spec, w)
    call(x)  # compile first
    calls = max(1, args.calls // 100)
    t_in, t_out = compare(call.__wrapped__, call, x, calls, args.repeats)
    print(f"indirect {spec.describe()}: unguarded {t_in * 1e6:.2f} µs/call, "
          f"guarded {t_out * 1e6:.2f} µs/call")


if __name__ == "__main__":
    main()
