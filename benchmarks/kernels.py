"""Speed floors of the numba kernels (issue 12), measured side by side in one run.

Usage::

    python benchmarks/kernels.py [--quick] [--clock wall|cpu] [--min-time S] [--no-jit] [--explore]

Every check compares two callables on the same input, interleaved call by call (A, B, A, B,
...), so a drift of the machine hits both. The headline is the median of the per-round ratios
``time(B) / time(A)`` (">1" means A is faster), with a distribution-free 95% confidence interval
from order statistics of those ratios. The ``verdict`` column judges the floor on that interval
(``outputs.judge``): ``pass`` only when the whole CI clears it, ``fail`` when the whole CI misses
it, ``undecided`` when the CI straddles it; ``not judged`` where the floor's precondition does
not hold (2-thread checks with fewer than six rounds in which the machine's own sgemm scaled 1.8x)
and ``not measured`` where a check could not run (a missing package, one numba thread,
``--no-jit``), each with its reason and counted apart.

The script exits 1 when a judged check fails (``--explore``: always 0) and writes its checks,
with the commit and a hash of this script, to ``benchmarks/results/kernels-DATE-CPU.json``
(``--out``), from which ``benchmarks/readme_tables.py`` renders README's table.

The floors (one thread, float32, NHWC, batch 1 unless said):

1. numba GEMM >= 0.8x BLAS sgemm (1024^3 and the MobileNet v1 1x1 shapes);
   the machine's configured tile >= 1.0x the AVX2 5x16 tile on AVX-512;
2. indirect >= 0.9x im2col (BLAS) on the ResNet-50 3x3 layers;
   indirect >= 1.0x im2col-numba on every 3x3 and 1x1 stride-2 layer of
   ``configs/paper.yaml``;
3. 2 threads >= 1.6x 1 thread for every built-in on layers >= 50 MFLOP, and
   >= 0.95x on every layer of ``configs/paper.yaml`` and ``configs/mobilenet.yaml``,
   counting the rounds in which the machine's sgemm, timed right after, scaled >= 1.8x
   (``kernels_scaling.py``; a memory read's scaling beside it, and each phase's own speedup
   on the large layers: where a call loses its second core);
4. winograd-f4 >= 1.5x im2col (BLAS) on 3x3 stride-1 layers with C, K >= 64;
5. best convbench >= 1.0x torch conv2d (geometric mean per network: the
   dense MobileNet v1 layers, the ResNet-50 3x3 layers);
6. cold compile of every kernel for the machine's configuration <= 25 s;
   ``convbench tune`` <= 120 s;
7. best convbench >= 0.9x the best production peer (torch, oneDNN, ONNX
   Runtime; both layouts on each side), geometric mean per network;
8. direct-blocked >= 1.0x im2col (BLAS) on every 3x3 layer of
   ``configs/paper.yaml``, and >= 0.9x the ``onednn`` peer, geometric mean
   per network (ResNet-50 3x3, dense MobileNet v1), NHWC;
9. im2col-numba >= 0.5x indirect on every depthwise layer of
   ``configs/mobilenet.yaml``; for the record beside it, direct-blocked's
   depthwise path and the ceiling im2col's copy sets (indirect alone against
   indirect after the same banded copy, with no kernel reading it).

"Best" in 5 and 7 is chosen among noisy candidates; the bootstrap redoes that choice in every
resample (``peer_checks.py``), so the interval carries the winner's curse instead of hiding it.

``--clock cpu`` measures the calling thread's CPU time (for a shared machine;
the 2-thread checks always use wall time).

Like a sweep's worker, the script measures with glibc's heap trimming off, ``OPENBLAS_THREAD_TIMEOUT=4``
(``convbench.machine.malloc_policy``; it restarts itself to set it) and BLAS warmed
(``convbench.machine.measuring``). It prints the kernel configuration, the BLAS threadpoolctl
reports, the grain and BLAS split (``convbench tune``'s) and the load average before and after.
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
from numba import njit
from threadpoolctl import threadpool_info

import convbench
from convbench.kernels.configs import TABLE, active_config, active_config_info, cpu_model
from convbench.kernels.depthwise import im2col_depthwise, pack_depthwise
from convbench.bestof import network_best_vs_best
from convbench.kernels.gemm import PackedGemm
from convbench.machine.malloc_policy import BLAS_ENV
from convbench.machine.measuring import prepare_measuring_process
from convbench.machine.threads import limit_threads, thread_report

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import (MOBILENET_DENSE, conv_call, interleaved,  # noqa: E402
                          median_ci, mobilenet_dense, paper_layers, resnet_3x3)
from outputs import Check, exit_code, summary_lines, write_output  # noqa: E402
from kernels_scaling import module_hashes, scaling_rows, shipped_layers  # noqa: E402
from peer_checks import best_against, not_measured, ours_and_peers  # noqa: E402


_JIT_SCRIPT = """
import time; t0 = time.perf_counter()
import convbench
first = True
for dtype in ("float32", "float64"):
    for name in sorted(convbench.list_algorithms()):
        algo = convbench.get_algorithm(name)
        if getattr(algo, "peer", False):  # a production library: no numba kernel of convbench's
            continue
        for layout in ("nhwc", "nchw"):
            for groups in (1, 4):
                spec = convbench.ConvSpec(batch=1, in_channels=4, out_channels=4, height=6, width=6,
                                          kernel=3, padding=1, groups=groups, layout=layout, dtype=dtype)
                if algo.supports(spec):
                    continue  # what it cannot run compiles nothing
                x, w = spec.random_inputs(0)
                algo.prepare(spec, w)(x)
                if first:
                    print("FIRST", time.perf_counter() - t0)
                    first = False
print("ALL", time.perf_counter() - t0)
"""


def jit_rows(tune_seconds: float | None) -> list[Check]:
    """Floor 6 in fresh processes: every kernel of every algorithm (both dtypes,
    the machine's configuration) compiled from an empty cache, then ``convbench
    tune`` as a user runs it (a private cache folder, so the user's is untouched)."""
    out = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        import resource

        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", _JIT_SCRIPT], env=env, text=True,
                       capture_output=True, check=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # the process's CPU time too: on a shared machine the wall time mostly waits for a core
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        out.append(Check("6 cold compile of every kernel, s", f"f32+f64 (CPU {cpu:.1f} s)",
                         wall, wall, wall, 25.0, "ceiling"))
        print(f"  {'cold compile':28s} {wall:5.1f} s wall, {cpu:5.1f} s CPU", file=sys.stderr,
              flush=True)
        if tune_seconds is not None:
            env["XDG_CACHE_HOME"] = cache
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", "from convbench.cli import app; app()",
                                  "tune", "--seconds", str(tune_seconds)], env=dict(env, COLUMNS="160"),
                                 text=True, capture_output=True, check=True)
            wall = time.perf_counter() - t0
            print(res.stdout, file=sys.stderr, flush=True)  # the candidates' table
            out.append(Check("6 convbench tune, s", f"--seconds {tune_seconds:g}", wall, wall, wall,
                             120.0, "ceiling"))
            print(f"  {'tune':28s} {wall:5.1f} s", file=sys.stderr, flush=True)
    return out


@njit(cache=True)
def _no_tiles(work, x, zero, offs, img_stride, channels, mult, w, out):  # pragma: no cover - compiled
    """A depthwise tile function that computes nothing: floor 9's copy alone."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples (every floor still measured)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--min-time", type=float, default=None, help="seconds per comparison")
    ap.add_argument("--no-jit", action="store_true", help="skip the compile-time and tune checks")
    ap.add_argument("--floors", default="1,2,3,4,5,6,7,8,9", help="comma-separated floors to measure (default: all)")
    ap.add_argument("--explore", action="store_true", help="exit 0 whatever the verdicts (for the numbers alone)")
    ap.add_argument("--out", help="the JSON output (default: benchmarks/results/kernels-DATE-CPU.json)")
    ap.add_argument("--tune-seconds", type=float, default=60.0, help="budget of the timed 'convbench tune' (its default: 60)")
    args = ap.parse_args(argv)
    if any(k not in os.environ for k in BLAS_ENV):  # read by OpenBLAS at load: start again with it
        os.execve(sys.executable, [sys.executable, *sys.argv], {**BLAS_ENV, **os.environ})
    prepare_measuring_process()  # as the sweep's measuring processes do
    import numba

    quick, floors = args.quick, set(args.floors.split(","))
    min_rounds = 7 if quick else 15
    min_time = args.min_time if args.min_time is not None else (0.2 if quick else 0.6)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    rng = np.random.default_rng(0)
    rows: list[Check] = []
    load0 = os.getloadavg()
    cfg_info = active_config_info()
    print(f"CPU: {cpu_model()}; numba target {cfg_info['compile_cpu']}; "
          f"kernel configuration: {cfg_info['name']} (source: {cfg_info['source']}, "
          f"MR={cfg_info['mr']} NR={cfg_info['nr_f32']} KC={cfg_info['kc']} NC={cfg_info['nc']} "
          f"dw {cfg_info['dw_pixels']}x{cfg_info['dw_vectors']}v)", file=sys.stderr, flush=True)

    def ratio(check: str, name: str, flops: int, a: Callable, b: Callable, la: str, lb: str,
              floor: float, threads: int = 1, clk: Callable[[], float] = clock) -> Check:
        with limit_threads(threads):
            ta, tb = interleaved([a, b], min_rounds, min_time, clk)
        med, lo, hi = median_ci([y / x for x, y in zip(ta, tb)])
        row = Check(check, name, med, lo, hi, floor, "record" if math.isnan(floor) else "floor", la, lb,
                    flops / np.median(ta) / 1e9, flops / np.median(tb) / 1e9)
        rows.append(row)
        print(f"  {check:34s} {name:24s} {med:5.2f}", file=sys.stderr, flush=True)
        return row

    # 1. the GEMM micro-kernel against numpy's BLAS: 1024^3 and the MobileNet v1 1x1 shapes
    gemms = [(1024, 1024, 1024)] + sorted({(hw * hw, cin, cout) for hw, k, st, cin, cout
                                           in MOBILENET_DENSE if k == 1}, reverse=True)
    for m, k, n in gemms if "1" in floors else []:
        a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
        g = PackedGemm(b)
        ratio("1 numba GEMM / BLAS sgemm", f"{m}x{k}x{n}", 2 * m * n * k,
              lambda: g(a), lambda: a @ b, active_config().name, "numpy", 0.8)
        if m == k == n == 1024 and active_config().isa == "avx512":  # the configured tile against the AVX2 one
            g2 = PackedGemm(b, TABLE["avx2"])
            ratio("1 configured tile / AVX2 5x16 tile", f"{m}x{k}x{n}", 2 * m * n * k, lambda: g(a),
                  lambda: g2(a), active_config().name, TABLE["avx2"].name, 1.0)

    # 2a. indirect against BLAS im2col on the ResNet-50 3x3 layers
    for spec in resnet_3x3() if "2" in floors else []:
        x, w = spec.random_inputs(1)
        ratio("2 indirect / im2col (BLAS), ResNet-50 3x3", spec.describe(), spec.flops,
              conv_call("indirect", spec, x, w), conv_call("im2col", spec, x, w),
              "indirect", "im2col", 0.9)
    # 2b. indirect against im2col-numba (same kernel) on paper.yaml's 3x3 and 1x1/s2 layers
    for name, spec in paper_layers() if "2" in floors else []:
        x, w = spec.random_inputs(2)
        ratio("2 indirect / im2col-numba, paper 3x3 and 1x1/s2", name, spec.flops,
              conv_call("indirect", spec, x, w), conv_call("im2col-numba", spec, x, w),
              "indirect", "im2col-numba", 1.0)

    # 4. winograd-f4 against BLAS im2col on 3x3 stride-1 layers with C, K >= 64
    for spec in [s for s in resnet_3x3() if s.stride == (1, 1) and "4" in floors]:
        x, w = spec.random_inputs(6)
        im2c = conv_call("im2col", spec, x, w)
        ratio("4 winograd-f4 / im2col (BLAS)", spec.describe(), spec.flops,
              conv_call("winograd-f4", spec, x, w), im2c, "winograd-f4", "im2col", 1.5)
        for other in ("winograd", "winograd-f6"):  # for the record, not floors
            ratio(f"4 {other} / im2col (BLAS), for the record", spec.describe(), spec.flops,
                  conv_call(other, spec, x, w), im2c, other, "im2col", math.nan)

    # 8. direct-blocked: against im2col (BLAS) on paper.yaml's 3x3 layers, against oneDNN per network
    for name, spec in [(n, s) for n, s in paper_layers() if s.kernel == (3, 3)] if "8" in floors else []:
        x, w = spec.random_inputs(8)
        ratio("8 direct-blocked / im2col (BLAS), paper 3x3", name, spec.flops,
              conv_call("direct-blocked", spec, x, w), conv_call("im2col", spec, x, w),
              "direct-blocked", "im2col", 1.0)
    if "8" in floors and "onednn" not in convbench.list_algorithms():
        rows.append(not_measured("8 direct-blocked / onednn", "onednn is not installed: pip install -e '.[peers]'"))
    elif "8" in floors:
        for network, specs in (("ResNet-50 3x3", resnet_3x3()), ("dense MobileNet v1", mobilenet_dense())):
            pairs = []
            for spec in specs[:: 3 if quick else 1]:
                x, w = spec.random_inputs(9)
                with limit_threads(1):  # oneDNN sizes its pools at prepare
                    ours, theirs = conv_call("direct-blocked", spec, x, w), conv_call("onednn", spec, x, w)
                    ta, tb = interleaved([ours, theirs], min_rounds, min_time, clock)
                pairs.append(([np.array(ta)], [np.array(tb)]))
            geo = network_best_vs_best(pairs, rng, 2000, mean="geometric", paired=True)
            rows.append(Check("8 direct-blocked / onednn, geometric mean", f"{len(pairs)} {network} layers", *geo,
                              0.9, "floor", "direct-blocked", "onednn"))
            print(f"  {'direct-blocked/onednn':34s} {network:24s} {geo[0]:5.2f}", file=sys.stderr, flush=True)

    # 9. im2col-numba (banded tap-major copy + indirect's depthwise kernel) on MobileNet v1's depthwise layers;
    # for the record, direct-blocked's and the ceiling the copy sets (indirect after the copy alone, unread)
    for name, spec in [(n, s) for n, s in shipped_layers() if n.startswith("mobilenet/") and s.is_depthwise
                       ] if "9" in floors else []:
        x, w = spec.random_inputs(10)
        ind = conv_call("indirect", spec, x, w)
        ratio("9 im2col-numba / indirect, MobileNet v1 depthwise", name, spec.flops,
              conv_call("im2col-numba", spec, x, w), ind, "im2col-numba", "indirect", 0.5)
        geometry = (x, spec.kernel, spec.stride, spec.dilation, spec.pad_top, spec.pad_left,
                    pack_depthwise(w, np.float32), np.empty(spec.output_shape, np.float32))
        for check, a, la in (("9 direct-blocked / indirect", conv_call("direct-blocked", spec, x, w), "direct-blocked"),
                             ("9 ceiling: indirect / (im2col-numba's copy alone + indirect)",
                              lambda: (im2col_depthwise(*geometry, tiles=_no_tiles), ind()), "copy + indirect")):
            ratio(f"{check}, MobileNet v1 depthwise, for the record", name, spec.flops, a, ind, la, "indirect",
                  math.nan)

    # 3. two threads against one (wall clock): every built-in, large layers and every shipped layer
    if "3" in floors and numba.config.NUMBA_NUM_THREADS < 2:
        rows.append(not_measured("3 2 threads / 1 thread", f"numba has {numba.config.NUMBA_NUM_THREADS} thread(s) here"))
    elif "3" in floors:
        scaling_rows(rows, min_rounds=min_rounds, min_time=min_time)

    # 5. and 7. the best of convbench against torch, and against the best production peer
    peers = ours_and_peers()[1]
    for floor, name, versus, bound in (("5", "5 best convbench / torch", "torch", 1.0),
                                       ("7", "7 best convbench / best peer", "peers", 0.9)):
        if floor in floors and ("torch" not in peers if versus == "torch" else not peers):
            rows.append(not_measured(name, f"{'torch' if versus == 'torch' else 'a peer'} is not installed: "
                                           "pip install -e '.[peers]'"))
        elif floor in floors:
            best_against(rows, versus=versus, quick=quick, min_rounds=min_rounds, min_time=min_time,
                         clock=clock, bound=bound)

    # 6. JIT and tune
    if "6" in floors:
        rows.extend([not_measured("6 cold compile and tune", "--no-jit")] if args.no_jit
                    else jit_rows(args.tune_seconds))

    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    grain, split = (thread_report()[k] for k in ("grain", "blas_split"))  # issue 31's per-machine choices
    load1 = os.getloadavg()
    lines = [f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs); kernel configuration "
             f"{cfg_info['name']} (source {cfg_info['source']})",
             "BLAS: " + "; ".join(f"{p.get('internal_api')} {p.get('version')} {p.get('architecture', '')}"
                                  f" x{p.get('num_threads')}" for p in threadpool_info())
             + f"; OpenBLAS env={env or 'unset'}",
             f"threads: grain {grain['flops']:.3g} flops / {grain['nbytes']:.3g} bytes a thread "
             f"({grain['source']}); one BLAS product on 2 threads: {split['mode']} ({split['source']})",
             f"clock={args.clock} quick={quick} numba={numba.__version__} numpy={np.__version__} "
             f"load average before {load0[0]:.2f}, after {load1[0]:.2f} (1 min)"]
    head = (f"{'check':52s} {'layer':28s} {'A':>21s} {'B':>18s} {'A GF/s':>7s} {'B GF/s':>7s} "
            f"{'value':>6s} {'95% CI':>13s} {'bound':>5s}  verdict")
    lines += [head, "-" * len(head)]
    for r in rows:
        ga, gb = ("" if math.isnan(g) else f"{g:7.1f}" for g in (r.gflops_a, r.gflops_b))
        lines.append(f"{r.check:52s} {r.layer:28s} {r.a:>21s} {r.b:>18s} {ga:>7s} {gb:>7s} "
                     f"{r.value:6.2f} [{r.lo:5.2f},{r.hi:5.2f}] {r.bound:5.2f}  {r.verdict}")
    lines += summary_lines(rows)
    text = "\n".join(lines)
    print(text)
    path = write_output("kernels", __file__, rows, text, out=args.out,
                        data={"load_before": load0[0], "load_after": load1[0], "quick": quick,
                              "clock": args.clock, "modules": module_hashes()})
    print(f"output: {path}")
    return exit_code(rows, args.explore)


if __name__ == "__main__":
    sys.exit(main())
