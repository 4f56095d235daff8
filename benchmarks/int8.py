"""Speed floors of the 8-bit (u8s8) kernels and algorithms (issue 24), measured side by side.

Usage::

    python benchmarks/int8.py [--quick] [--clock wall|cpu] [--min-time S] [--floors a,b,c,d]
                              [--explore] [--out FILE]

As ``benchmarks/kernels.py``: every check times its callables interleaved,
round by round; the headline is the median of the per-round ratios
``time(B) / time(A)`` (> 1: A is faster) with a distribution-free 95% CI,
judged by ``outputs.judge`` (``pass`` only when the whole CI clears the
floor). Every u8s8 answer is checked once against the exact reference
(within ``convbench.quant.LSB_TOLERANCE``) before it is timed.

The floors (one thread, NHWC, batch 1):

a. the numba u8s8 GEMM (requantizing to u8) >= 2.0x the numba float32 GEMM
   where the u8s8 configuration has VNNI, >= 1.3x where it has AVX2 (or
   AVX-512 BW) without it, on 1024^3 and the MobileNet v1 1x1 shapes
   (``not judged`` on a CPU with neither);
b. ``indirect`` u8s8 >= 1.0x ``im2col-numba`` u8s8 on every 3x3 and 1x1
   stride-2 layer of ``configs/paper.yaml``;
c. best convbench u8s8 >= 0.6x the best 8-bit peer (ONNX Runtime's
   QLinearConv, PyTorch's quantized engines: the peers registered for u8s8;
   both layouts on each side), geometric mean over the dense MobileNet v1
   layers and over the ResNet-50 3x3 layers, the choice of "best" redone per
   resample (``peer_checks.py``); ``not measured`` without a u8s8 peer;
d. cold compile of every kernel, float and 8-bit, <= 40 s: every algorithm
   but the peers on small layers of every dtype it runs (both layouts,
   dense and depthwise), in a fresh process with an empty ``NUMBA_CACHE_DIR``.

``--quick`` takes every third layer of a network, fewer rounds and less time
per comparison: a few minutes. Writes the checks, with the commit and a hash
of this script, to ``benchmarks/results/int8-DATE-CPU.json`` (``--out``) and
exits 1 when a judged check fails (``--explore``: always 0).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable

import numpy as np

import convbench
from convbench.algorithm import unsupported_reason
from convbench.bestof import best_vs_best, network_best_vs_best
from convbench.kernels.configs import active_config, active_quant_config_info
from convbench.kernels.gemm import PackedGemm
from convbench.kernels.qgemm import PackedQGemm
from convbench.machine.malloc_policy import BLAS_ENV, keep_freed_memory
from convbench.machine.threads import limit_threads
from convbench.quant import LSB_TOLERANCE, max_abs_err_lsb
from convbench.reference import reference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import MOBILENET_DENSE, interleaved, median_ci, paper_layers  # noqa: E402
from outputs import Check, exit_code, summary_lines, write_output  # noqa: E402
from peer_checks import N_BOOT, RESNET50_3X3, not_measured, ours_and_peers  # noqa: E402

#: The floor of a: u8s8 GEMM / float32 GEMM, by the u8s8 configuration's instruction.
GEMM_FLOORS = {"avx512vnni": 2.0, "avxvnni": 2.0, "avx512bw": 1.3, "avx2": 1.3}
COMPILE_CEILING = 40.0

_JIT_SCRIPT = """
import time; t0 = time.perf_counter()
import convbench
from convbench.algorithm import unsupported_reason
for name in sorted(convbench.list_algorithms()):
    algo = convbench.get_algorithm(name)
    if getattr(algo, "peer", False):  # a production library: no numba kernel of convbench's
        continue
    for dtype in algo.dtypes:
        for layout in ("nhwc", "nchw"):
            for groups in (1, 4):
                spec = convbench.ConvSpec(batch=1, in_channels=4, out_channels=4, height=6, width=6,
                                          kernel=3, padding=1, groups=groups, layout=layout, dtype=dtype)
                if unsupported_reason(algo, spec):
                    continue  # what it cannot run compiles nothing
                x, w = spec.random_inputs(0)
                algo.prepare(spec, w)(x)
print("ALL", time.perf_counter() - t0)
"""


def qconv_call(name: str, spec: convbench.ConvSpec, x: np.ndarray, qw: object) -> Callable[[], object]:
    """A prepared u8s8 convolution, checked once against the exact reference."""
    call = convbench.get_algorithm(name).prepare(spec, qw)
    err = max_abs_err_lsb(call(x), reference(spec, x, qw))
    if err > LSB_TOLERANCE:
        raise AssertionError(f"{name} is wrong on {spec.describe()}: {err} LSB")
    return lambda: call(x)


def layer(hw: int, k: int, st: int, cin: int, cout: int, layout: str = "nhwc") -> convbench.ConvSpec:
    """A batch-1 u8s8 layer with 'same' padding."""
    return convbench.ConvSpec(batch=1, in_channels=cin, out_channels=cout, height=hw, width=hw, kernel=k,
                              stride=st, padding=k // 2, layout=layout, dtype="u8s8")


def compile_rows() -> list[Check]:
    """Floor d: every kernel, float and 8-bit, compiled from an empty cache in a fresh process."""
    with tempfile.TemporaryDirectory() as cache:
        import resource

        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", _JIT_SCRIPT], env=dict(os.environ, NUMBA_CACHE_DIR=cache),
                       text=True, capture_output=True, check=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # the CPU time too: on a shared machine the wall time mostly waits for a core
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(f"  {'cold compile':40s} {wall:5.1f} s wall, {cpu:5.1f} s CPU", file=sys.stderr, flush=True)
    return [Check("d cold compile of every kernel (float and u8s8), s", f"CPU {cpu:.1f} s", wall, wall, wall,
                  COMPILE_CEILING, "ceiling")]


def best_u8s8(rows: list[Check], quick: bool, min_rounds: int, min_time: float,
              clock: Callable[[], float]) -> None:
    """Floor c: per layer, the best convbench u8s8 candidate against the best 8-bit peer
    (both layouts each), all interleaved; then the geometric mean per network."""
    ours_all, peers_all = ours_and_peers()
    ours = [a for a in ours_all if "u8s8" in convbench.get_algorithm(a).dtypes]
    peers = [a for a in peers_all if "u8s8" in convbench.get_algorithm(a).dtypes]
    if not peers:
        rows.append(not_measured("c best convbench u8s8 / best 8-bit peer",
                                 "no peer is registered for u8s8 (pip install -e '.[peers]')"))
        return
    rng = np.random.default_rng(0)
    for network, shapes in (("dense MobileNet v1", MOBILENET_DENSE), ("ResNet-50 3x3", RESNET50_3X3)):
        sides = []
        for hw, k, st, cin, cout in shapes[:: 3 if quick else 1]:
            cands, calls = [], []
            for layout in ("nhwc", "nchw"):
                spec = layer(hw, k, st, cin, cout, layout)
                x, qw = spec.random_inputs(7)
                for a in ours + peers:
                    if unsupported_reason(convbench.get_algorithm(a), spec) is None:
                        with limit_threads(1):  # a peer sizes its thread pools at prepare
                            calls.append(qconv_call(a, spec, x, qw))
                        cands.append((a, layout, convbench.get_algorithm(a).implementation(spec)))
            with limit_threads(1):
                times = np.array(interleaved(calls, min_rounds, min_time, clock))
            mine = [i for i, c in enumerate(cands) if c[0] in ours]
            theirs = [i for i, c in enumerate(cands) if c[0] in peers]
            if not theirs:  # every peer skipped this layer
                continue
            side = ([times[i] for i in mine], [times[i] for i in theirs])
            ratio, lo, hi = best_vs_best(*side, rng, N_BOOT, paired=True)
            sides.append(side)
            med = np.median(times, axis=1)
            o, t = min(mine, key=med.__getitem__), min(theirs, key=med.__getitem__)
            desc = spec.describe().replace(" nchw", "").replace(" nhwc", "")
            rows.append(Check("c best convbench u8s8 / best 8-bit peer (per layer, no floor)", desc, ratio, lo,
                              hi, math.nan, "record", f"{cands[o][0]}:{cands[o][1]}",
                              f"{cands[t][0]}:{cands[t][1]}", spec.flops / med[o] / 1e9, spec.flops / med[t] / 1e9))
            print(f"  {'best u8s8 / best peer':40s} {desc:26s} {ratio:5.2f}  ({cands[o][2]} vs {cands[t][2]})",
                  file=sys.stderr, flush=True)
        if sides:
            geo = network_best_vs_best(sides, rng, N_BOOT, mean="geometric", paired=True)
            rows.append(Check("c best convbench u8s8 / best 8-bit peer, geometric mean",
                              f"{len(sides)} {network} layers", *geo, 0.6, "floor", "best", "best peer"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="every third network layer, fewer samples")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--min-time", type=float, default=None, help="seconds per comparison")
    ap.add_argument("--floors", default="a,b,c,d", help="comma-separated floors to measure (default: all)")
    ap.add_argument("--explore", action="store_true", help="exit 0 whatever the verdicts")
    ap.add_argument("--out", help="the JSON output (default: benchmarks/results/int8-DATE-CPU.json)")
    args = ap.parse_args(argv)
    if any(k not in os.environ for k in BLAS_ENV):  # read by OpenBLAS at load: start again with it
        os.execve(sys.executable, [sys.executable, *sys.argv], {**BLAS_ENV, **os.environ})
    keep_freed_memory()  # the sweep's measuring process does the same
    import numba

    quick, floors = args.quick, set(args.floors.split(","))
    min_rounds = 7 if quick else 15
    min_time = args.min_time if args.min_time is not None else (0.2 if quick else 0.6)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    rng = np.random.default_rng(0)
    rows: list[Check] = []
    load0 = os.getloadavg()
    qcfg = active_quant_config_info()
    print(f"u8s8 kernel configuration: {qcfg['name']} (source {qcfg['source']}); float32: "
          f"{active_config().name}", file=sys.stderr, flush=True)

    def ratio(check: str, name: str, ops: int, a: Callable, b: Callable, la: str, lb: str, floor: float,
              judged: bool = True, note: str = "") -> Check:
        with limit_threads(1):
            ta, tb = interleaved([a, b], min_rounds, min_time, clock)
        med, lo, hi = median_ci([y / x for x, y in zip(ta, tb)])
        row = Check(check, name, med, lo, hi, floor, "floor", la, lb, ops / np.median(ta) / 1e9,
                    ops / np.median(tb) / 1e9, judged=judged, note=note)
        rows.append(row)
        print(f"  {check:40s} {name:26s} {med:5.2f}", file=sys.stderr, flush=True)
        return row

    # a. the u8s8 GEMM against the float32 GEMM, both numba, both with their output written
    gemms = [(1024, 1024, 1024)] + sorted({(hw * hw, cin, cout) for hw, k, st, cin, cout
                                           in MOBILENET_DENSE if k == 1}, reverse=True)
    bound = GEMM_FLOORS.get(qcfg["isa"], math.nan)
    note = "" if qcfg["isa"] in GEMM_FLOORS else f"the u8s8 configuration is {qcfg['isa']}: no floor without AVX2"
    for m, k, n in gemms if "a" in floors else []:
        a8 = rng.integers(0, 256, (m, k), dtype=np.uint8)
        b8 = rng.integers(-128, 128, (k, n), dtype=np.int8)
        corr, mult = rng.integers(-5000, 5000, n).astype(np.int32), np.full(n, 1e-3, np.float32)
        af, bf = rng.uniform(-1, 1, (m, k)).astype(np.float32), rng.uniform(-1, 1, (k, n)).astype(np.float32)
        g8, gf = PackedQGemm(b8), PackedGemm(bf)
        np.testing.assert_array_equal(g8.raw(a8), a8.astype(np.int64) @ b8)
        ratio("a u8s8 GEMM / float32 GEMM (numba)", f"{m}x{k}x{n}", 2 * m * k * n, lambda: g8(a8, corr, mult, 128),
              lambda: gf(af), qcfg["name"], active_config().name, bound, judged=bool(note == ""), note=note)

    # b. indirect against im2col-numba, both u8s8 (the same micro-kernel)
    for name, spec in paper_layers() if "b" in floors else []:
        spec = spec.replace(dtype="u8s8")
        x, qw = spec.random_inputs(2)
        ratio("b indirect / im2col-numba, u8s8, paper 3x3 and 1x1/s2", name, spec.flops,
              qconv_call("indirect", spec, x, qw), qconv_call("im2col-numba", spec, x, qw),
              "indirect", "im2col-numba", 1.0)

    if "c" in floors:
        best_u8s8(rows, quick, min_rounds, min_time, clock)
    if "d" in floors:
        rows.extend(compile_rows())

    load1 = os.getloadavg()
    lines = [f"CPU: {_cpu()} ({os.cpu_count()} logical CPUs); u8s8 configuration {qcfg['name']} "
             f"(source {qcfg['source']}); float32 {active_config().name}",
             f"clock={args.clock} quick={quick} numba={numba.__version__} numpy={np.__version__} "
             f"load average before {load0[0]:.2f}, after {load1[0]:.2f} (1 min); GOP/s for u8s8, GFLOP/s for float"]
    head = (f"{'check':58s} {'layer':28s} {'A':>28s} {'B':>22s} {'A G/s':>7s} {'B G/s':>7s} "
            f"{'value':>6s} {'95% CI':>13s} {'bound':>5s}  verdict")
    lines += [head, "-" * len(head)]
    for r in rows:
        ga = "" if math.isnan(r.gflops_a) else f"{r.gflops_a:7.1f}"
        gb = "" if math.isnan(r.gflops_b) else f"{r.gflops_b:7.1f}"
        lines.append(f"{r.check:58s} {r.layer:28s} {r.a:>28s} {r.b:>22s} {ga:>7s} {gb:>7s} "
                     f"{r.value:6.2f} [{r.lo:5.2f},{r.hi:5.2f}] {r.bound:5.2f}  {r.verdict}")
    lines += summary_lines(rows)
    text = "\n".join(lines)
    print(text)
    path = write_output("int8", __file__, rows, text, out=args.out,
                        data={"load_before": load0[0], "load_after": load1[0], "quick": quick,
                              "clock": args.clock, "u8s8_config": qcfg})
    print(f"output: {path}")
    return exit_code(rows, args.explore)


def _cpu() -> str:
    from convbench.kernels.tune import cpu_model

    return cpu_model()


if __name__ == "__main__":
    sys.exit(main())
