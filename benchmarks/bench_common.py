"""Measuring helpers of ``benchmarks/kernels.py``: interleaved timing with a
median-ratio CI, the 2-vs-1-thread loop, and the layer lists it uses (the
rows and verdicts are ``outputs.Check``)."""

from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np

from convbench import ConvSpec, get_algorithm, reference, relative_error, timing
from convbench.machine.threads import limit_threads


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


def layer(c: int, k: int, hw: int, kernel: int, stride: int = 1, groups: int = 1) -> ConvSpec:
    """A batch-1 float32 NHWC layer with 'same' padding."""
    return ConvSpec(batch=1, in_channels=c, out_channels=k, height=hw, width=hw, kernel=kernel,
                    stride=stride, padding=kernel // 2, groups=groups, layout="nhwc",
                    dtype="float32")


#: Dense MobileNet v1 layers (input size, kernel, stride, in, out).
MOBILENET_DENSE = [(224, 3, 2, 3, 32), (112, 1, 1, 32, 64), (56, 1, 1, 64, 128),
                   (56, 1, 1, 128, 128), (28, 1, 1, 128, 256), (28, 1, 1, 256, 256),
                   (14, 1, 1, 256, 512), (14, 1, 1, 512, 512), (7, 1, 1, 512, 1024),
                   (7, 1, 1, 1024, 1024)]
#: ResNet-50 (v1.5) 3x3 layers: (in = out channels, input size, stride).
RESNET_3X3 = [(64, 56, 1), (128, 28, 1), (256, 14, 1), (512, 7, 1),
              (128, 56, 2), (256, 28, 2), (512, 14, 2)]


def mobilenet_dense() -> list[ConvSpec]:
    return [layer(cin, cout, hw, k, st) for hw, k, st, cin, cout in MOBILENET_DENSE]


def resnet_3x3() -> list[ConvSpec]:
    return [layer(c, c, hw, 3, st) for c, hw, st in RESNET_3X3]


def paper_layers() -> list[tuple[str, ConvSpec]]:
    """Every 3x3 and 1x1 stride-2 layer of configs/paper.yaml (grids included), float32 NHWC."""
    try:
        from convbench.config import load_config
    except ImportError:  # pragma: no cover - after the config package move
        from convbench.config.load import load_config  # type: ignore[no-redef]
    here = os.path.dirname(os.path.abspath(__file__))
    cfg = load_config(os.path.join(here, "..", "configs", "paper.yaml"))
    out = []
    for lay in cfg.layers:
        spec = lay.spec("nhwc", "float32")
        if spec.kernel == (3, 3) or (spec.kernel == (1, 1) and spec.stride != (1, 1)):
            out.append((lay.name, spec))
    return out


def two_vs_one(make: Callable[[], Callable[[], object]], min_rounds: int, min_time: float
               ) -> tuple[float, float, float]:
    """Median (and CI) of time(1 thread) / time(2 threads), alternating call by call.

    ``make`` prepares the call; it is called under each thread count, as a
    sweep prepares each case under its own: a library that sizes its thread
    pool at prepare (oneDNN through torch) ran a call prepared for two
    threads 22-30x slower on one, which is not its one-thread speed."""
    times: list[list[float]] = [[], []]
    calls = {}
    for t in (1, 2):
        with limit_threads(t):
            calls[t] = make()
            calls[t]()
    start = time.perf_counter()
    n = 0
    while n < min_rounds or time.perf_counter() - start < min_time:
        for i, t in enumerate((1, 2)):
            with limit_threads(t):
                t0 = time.perf_counter()
                calls[t]()
                times[i].append(time.perf_counter() - t0)
        n += 1
        if n >= 50 * min_rounds:
            break
    return median_ci([a / b for a, b in zip(*times)])
