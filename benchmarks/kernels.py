"""Speed floors of the numba kernels (issue 5), measured side by side in one run.

Usage::

    python benchmarks/kernels.py [--quick] [--clock wall|cpu] [--min-time S]

Every check compares two callables on the same input, interleaved call by
call (A, B, A, B, ...), so a drift of the machine hits both. The headline is
the median of the per-round ratios ``time(B) / time(A)`` (">1" means A is
faster), with a distribution-free 95% confidence interval from order
statistics of those ratios (binomial ranks around the median). Absolute
checks (GFLOP/s) report the median rate and the same kind of interval.

Threads are set for every pool at once (numba, and BLAS/OpenMP through
threadpoolctl) by ``convbench.machine.threads.limit_threads``; checks are single
thread, float32, NHWC, batch 1, except the thread-scaling check (2 vs 1).

``--clock cpu`` measures the calling thread's CPU time instead of wall time:
use it on a shared machine, where other processes steal the core (it cannot
be used for the 2-thread check, which always uses wall time).

Like a sweep's worker, the script measures with glibc's heap trimming off
and ``OPENBLAS_THREAD_TIMEOUT=4`` (see ``convbench.machine.malloc_policy``: both
otherwise distort timings by up to 10x); it restarts itself to set the latter.

BLAS comparisons: this machine may set ``OPENBLAS_CORETYPE`` /
``OPENBLAS_L2_SIZE``; to compare against OpenBLAS as it tunes itself, run
with them unset, e.g. ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python
benchmarks/kernels.py``. The script prints what it found.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

import convbench
from convbench import ConvSpec, get_algorithm, reference, relative_error
from convbench.kernels.gemm import PackedGemm
from convbench import timing
from convbench.machine.malloc_policy import BLAS_ENV, keep_freed_memory
from convbench.machine.threads import limit_threads


@dataclass
class Row:
    """One line of the table."""

    check: str
    layer: str
    a: str
    b: str
    gflops_a: float
    gflops_b: float
    value: float  # ratio time(B)/time(A), or GFLOP/s of A for absolute checks
    lo: float
    hi: float
    floor: float
    kind: str  # "ratio", "GFLOP/s" or "seconds" (a ceiling)

    @property
    def ok(self) -> bool:
        # seconds are a ceiling, ratios and rates a floor
        return self.value <= self.floor if self.kind == "seconds" else self.value >= self.floor


def median_ci(values: list[float]) -> tuple[float, float, float]:
    """Median and its distribution-free 95% CI (convbench.timing's order statistics)."""
    lo, hi = timing.median_ci(values)
    return float(np.median(values)), lo, hi


def interleaved(calls: list[Callable[[], object]], min_rounds: int, min_time: float,
                clock: Callable[[], float]) -> list[list[float]]:
    """Times of each call, one call of each per round, until both minima are met."""
    for c in calls:  # warm-up (and JIT) outside the samples
        c()
    times: list[list[float]] = [[] for _ in calls]
    start = time.perf_counter()
    rounds = 0
    while rounds < min_rounds or time.perf_counter() - start < min_time:
        order = range(len(calls)) if rounds % 2 == 0 else reversed(range(len(calls)))
        for i in order:
            t0 = clock()
            calls[i]()
            times[i].append(clock() - t0)
        rounds += 1
        if rounds >= 50 * min_rounds:
            break
    return times


def conv_call(name: str, spec: ConvSpec, x: np.ndarray, w: np.ndarray) -> Callable[[], object]:
    """A prepared convolution, checked once against the reference."""
    algo = get_algorithm(name)
    call = algo.prepare(spec, w)
    err = relative_error(call(x), reference(spec, x, w))
    if err > algo.tolerance_for(spec.dtype):
        raise AssertionError(f"{name} is wrong on {spec.describe()}: error {err:.3g}")
    return lambda: call(x)


def numpy_im2col_call(spec: ConvSpec, x: np.ndarray, w: np.ndarray) -> Callable[[], object]:
    """Fallback BLAS im2col (used only if the ``im2col`` algorithm is missing)."""
    from convbench.kernels.im2row import im2row

    oh, ow, kh, kw = spec.output_height, spec.output_width, *spec.kernel
    wm = np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(kh * kw * spec.in_channels, -1))
    geo = (kh, kw, *spec.stride, *spec.dilation, spec.pad_top, spec.pad_left, oh, ow)

    def call() -> np.ndarray:
        if not spec.is_pointwise:  # a 1x1 stride-1 unpadded NHWC input already is the matrix
            col = np.empty((oh * ow, kh * kw * spec.in_channels), x.dtype)
            im2row(x, *geo, 1, col)
        else:
            col = x.reshape(oh * ow, -1)
        return (col @ wm).reshape(spec.output_shape)

    return call


def layer(c: int, k: int, hw: int, kernel: int, stride: int = 1, groups: int = 1) -> ConvSpec:
    """A batch-1 float32 NHWC layer with 'same' padding."""
    return ConvSpec(batch=1, in_channels=c, out_channels=k, height=hw, width=hw, kernel=kernel,
                    stride=stride, padding=kernel // 2, groups=groups, layout="nhwc",
                    dtype="float32")


#: Dense MobileNet v1 layers (input size, kernel, stride, in, out): floor 4.
MOBILENET_DENSE = [(224, 3, 2, 3, 32), (112, 1, 1, 32, 64), (56, 1, 1, 64, 128),
                   (56, 1, 1, 128, 128), (28, 1, 1, 128, 256), (28, 1, 1, 256, 256),
                   (14, 1, 1, 256, 512), (14, 1, 1, 512, 512), (7, 1, 1, 512, 1024),
                   (7, 1, 1, 1024, 1024)]


def torch_vs_best(rows: list[Row], quick: bool, min_rounds: int, min_time: float,
                  clock: Callable[[], float]) -> None:
    """Per dense MobileNet layer: torch's time over the fastest convbench algorithm's,
    all measured interleaved; then the geometric mean with a bootstrap interval."""
    ours = [a for a in convbench.list_algorithms() if a not in ("torch", "naive")]
    per_layer: list[np.ndarray] = []
    for hw, k, st, cin, cout in MOBILENET_DENSE[:: 3 if quick else 1]:
        spec = layer(cin, cout, hw, k, st)
        x, w = spec.random_inputs(7)
        names = [a for a in ours if get_algorithm(a).supports(spec) is None]
        calls = [conv_call("torch", spec, x, w)] + [conv_call(a, spec, x, w) for a in names]
        with limit_threads(1):
            times = interleaved(calls, min_rounds, min_time, clock)
        best = int(np.argmin([np.median(t) for t in times[1:]])) + 1
        r = np.array(times[0]) / np.array(times[best])
        per_layer.append(r)
        med, lo, hi = median_ci(list(r))
        rows.append(Row("best/torch (per layer)", spec.describe(), names[best - 1], "torch",
                        spec.flops / np.median(times[best]) / 1e9,
                        spec.flops / np.median(times[0]) / 1e9, med, lo, hi, 0.9, "ratio"))
        print(f"  {'best/torch':28s} {spec.describe():22s} {med:5.2f}", file=sys.stderr)
    rng = np.random.default_rng(0)
    geo = lambda rs: float(np.exp(np.mean([np.log(np.median(r)) for r in rs])))  # noqa: E731
    boots = [geo([rng.choice(r, len(r)) for r in per_layer]) for _ in range(1000)]
    rows.append(Row("best/torch geomean >=0.9", f"{len(per_layer)} dense MobileNet v1 layers",
                    "best", "torch", float("nan"), float("nan"), geo(per_layer),
                    float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5)), 0.9,
                    "ratio"))


_JIT_SCRIPT = """
import time; t0 = time.perf_counter()
import convbench
first = True
for dtype in ("float32", "float64"):
    for name in ("naive", "im2col", "gemm-direct", "winograd", "fft", "indirect", "im2col-numba"):
        for layout in ("nhwc", "nchw"):
            for groups in (1, 4):
                spec = convbench.ConvSpec(batch=1, in_channels=4, out_channels=4, height=6, width=6,
                                          kernel=3, padding=1, groups=groups, layout=layout, dtype=dtype)
                x, w = spec.random_inputs(0)
                convbench.get_algorithm(name).prepare(spec, w)(x)
                if first:
                    print("FIRST", time.perf_counter() - t0)
                    first = False
print("ALL", time.perf_counter() - t0)
"""


def jit_rows() -> list[Row]:
    """Floor 8 in fresh processes: every kernel compiled from an empty cache (<= 20 s),
    then with that cache warm, the time to a first float32 result (<= 2 s)."""
    import subprocess
    import tempfile

    out = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label, key, floor in (("cold: compile every kernel <=20 s", "ALL", 20.0),
                                  ("warm cache: first result <=2 s", "FIRST", 2.0)):
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", _JIT_SCRIPT], env=env, text=True,
                                 capture_output=True, check=True)
            wall = time.perf_counter() - t0
            inner = dict(line.split() for line in res.stdout.splitlines())
            # the process's own wall time includes interpreter start-up and imports
            value = wall if key == "ALL" else float(inner[key]) + (wall - float(inner["ALL"]))
            out.append(Row(label, "all algorithms, both dtypes", "seconds", "", float("nan"),
                           float("nan"), value, value, value, floor, "seconds"))
            print(f"  {label:28s} {value:5.1f} s", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer layers and samples")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--min-time", type=float, default=None, help="seconds per comparison")
    ap.add_argument("--no-jit", action="store_true", help="skip the compile-time check")
    args = ap.parse_args(argv)
    if any(k not in os.environ for k in BLAS_ENV):  # read by OpenBLAS at load: start again with it
        os.execve(sys.executable, [sys.executable, *sys.argv], {**BLAS_ENV, **os.environ})
    keep_freed_memory()  # the sweep's measuring process does the same
    quick = args.quick
    min_rounds = 11 if quick else 31
    min_time = args.min_time if args.min_time is not None else (0.3 if quick else 1.5)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    have_im2col = "im2col" in convbench.list_algorithms()

    def ratio(check: str, name: str, flops: int, a: Callable, b: Callable, la: str, lb: str,
              floor: float, threads: int = 1, clk: Callable[[], float] = clock) -> None:
        with limit_threads(threads):
            ta, tb = interleaved([a, b], min_rounds, min_time, clk)
        r = [y / x for x, y in zip(ta, tb)]
        med, lo, hi = median_ci(r)
        rows.append(Row(check, name, la, lb, flops / np.median(ta) / 1e9,
                        flops / np.median(tb) / 1e9, med, lo, hi, floor, "ratio"))
        print(f"  {check:28s} {name:22s} {med:5.2f}", file=sys.stderr, flush=True)

    def absolute(check: str, name: str, flops: int, a: Callable, la: str, floor: float) -> None:
        with limit_threads(1):
            (ta,) = interleaved([a], min_rounds, min_time, clock)
        med, lo, hi = median_ci([flops / t / 1e9 for t in ta])
        rows.append(Row(check, name, la, "", med, float("nan"), med, lo, hi, floor, "GFLOP/s"))
        print(f"  {check:28s} {name:22s} {med:5.1f}", file=sys.stderr, flush=True)

    # 1. the GEMM micro-kernel against numpy's BLAS
    gemms = [(1024, 1024, 1024), (3136, 64, 128), (784, 256, 256), (196, 512, 512),
             (49, 1024, 1024)]
    if quick:
        gemms = [gemms[0], gemms[3]]
    for m, k, n in gemms:
        a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
        g = PackedGemm(b)
        ratio("gemm numba/BLAS >=0.6x", f"{m}x{k}x{n}", 2 * m * n * k,
              lambda: g(a), lambda: a @ b, "numba", "numpy", 0.6)

    # 2./3. 3x3 stride 1: indirect vs im2col-numba (same kernel) and vs BLAS im2col
    threes = [layer(64, 64, 56, 3), layer(128, 128, 28, 3), layer(256, 256, 14, 3)]
    if quick:
        threes = threes[1:2]
    for spec in threes:
        x, w = spec.random_inputs(1)
        ind = conv_call("indirect", spec, x, w)
        ratio("indirect/im2col-numba >=1.15", spec.describe(), spec.flops, ind,
              conv_call("im2col-numba", spec, x, w), "indirect", "im2col-numba", 1.15)
        blas = conv_call("im2col", spec, x, w) if have_im2col else numpy_im2col_call(spec, x, w)
        ratio("indirect/im2col(BLAS) >=0.8", spec.describe(), spec.flops, ind, blas,
              "indirect", "im2col" if have_im2col else "numpy-im2col", 0.8)

    # 5. Winograd against BLAS im2col on 3x3 stride-1 layers with C, K >= 64, spatial >= 28
    for spec in threes[:2] if not quick else threes:
        x, w = spec.random_inputs(6)
        ratio("winograd/im2col(BLAS) >=1.2", spec.describe(), spec.flops,
              conv_call("winograd", spec, x, w), conv_call("im2col", spec, x, w),
              "winograd", "im2col", 1.2)

    # 4. 1x1: stride 1 (no copy in im2col-numba) and stride 2
    ones = [(layer(64, 128, 56, 1), 0.9), (layer(512, 512, 14, 1), 0.9),
            (layer(256, 512, 56, 1, stride=2), 1.0), (layer(512, 1024, 28, 1, stride=2), 1.0)]
    if quick:
        ones = [ones[1], ones[2]]
    for spec, floor in ones:
        x, w = spec.random_inputs(2)
        ratio(f"1x1 s{spec.stride_h} indirect/im2col-numba >={floor}", spec.describe(),
              spec.flops, conv_call("indirect", spec, x, w),
              conv_call("im2col-numba", spec, x, w), "indirect", "im2col-numba", floor)

    # 5. depthwise MobileNet v1 layers
    dws = [layer(32, 32, 112, 3, 1, 32), layer(64, 64, 112, 3, 2, 64),
           layer(128, 128, 56, 3, 1, 128), layer(256, 256, 28, 3, 1, 256),
           layer(512, 512, 14, 3, 1, 512), layer(1024, 1024, 7, 3, 1, 1024)]
    if quick:
        dws = [dws[0], dws[4]]
    for spec in dws:
        x, w = spec.random_inputs(3)
        absolute("depthwise >=5 GFLOP/s", spec.describe(), spec.flops,
                 conv_call("indirect", spec, x, w), "indirect", 5.0)

    # 6. naive on 3x3
    for spec in ([layer(64, 64, 56, 3)] if quick else [layer(64, 64, 56, 3), layer(256, 256, 14, 3)]):
        x, w = spec.random_inputs(4)
        absolute("naive 3x3 >=2 GFLOP/s", spec.describe(), spec.flops,
                 conv_call("naive", spec, x, w), "naive", 2.0)

    # 7. two threads against one (wall clock): indirect on layers >= 50 MFLOP
    import numba

    if numba.config.NUMBA_NUM_THREADS >= 2:
        big = threes + [layer(512, 512, 14, 1)]
        for spec, algo in [(spec, algo) for spec in big for algo in ("indirect", "im2col")]:
            x, w = spec.random_inputs(5)
            c = conv_call(algo, spec, x, w)
            times: list[list[float]] = [[], []]
            c()
            start = time.perf_counter()
            n = 0
            while n < min_rounds or time.perf_counter() - start < min_time:
                for i, t in enumerate((1, 2)):
                    with limit_threads(t):
                        t0 = time.perf_counter()
                        c()
                        times[i].append(time.perf_counter() - t0)
                n += 1
            r = [a / b for a, b in zip(*times)]
            med, lo, hi = median_ci(r)
            rows.append(Row("2 threads/1 thread >=1.7x", spec.describe(), f"{algo} 2t", "1 thr",
                            spec.flops / np.median(times[1]) / 1e9,
                            spec.flops / np.median(times[0]) / 1e9, med, lo, hi, 1.7, "ratio"))
            print(f"  {'threads':28s} {spec.describe():22s} {med:5.2f}", file=sys.stderr)

    # 4. best convbench algorithm per dense MobileNet v1 layer against torch (oneDNN)
    if "torch" in convbench.list_algorithms():
        torch_vs_best(rows, quick, min_rounds, min_time, clock)
    else:
        print("  torch is not installed: floor 4 not measured (pip install torch==2.13.0)",
              file=sys.stderr)

    # 8. JIT: cold compile of every kernel, then a new process with a warm cache
    if not args.no_jit:
        rows.extend(jit_rows())

    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    print(f"clock={args.clock} quick={quick} numba={numba.__version__} numpy={np.__version__} "
          f"OpenBLAS env={env or 'unset'} load={os.getloadavg()[0]:.2f}")
    head = (f"{'check':32s} {'layer':34s} {'A':>13s} {'B':>13s} {'A GF/s':>7s} {'B GF/s':>7s} "
            f"{'value':>6s} {'95% CI':>13s} {'floor':>5s}  ok")
    print(head)
    print("-" * len(head))
    for r in rows:
        gb = "" if math.isnan(r.gflops_b) else f"{r.gflops_b:7.1f}"
        print(f"{r.check:32s} {r.layer:34s} {r.a:>13s} {r.b:>13s} {r.gflops_a:7.1f} {gb:>7s} "
              f"{r.value:6.2f} [{r.lo:5.2f},{r.hi:5.2f}] {r.floor:5.2f}  {'yes' if r.ok else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
