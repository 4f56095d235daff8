"""Floors 5 and 7 of ``benchmarks/kernels.py``: the best of convbench against torch,
and against the best production peer, per layer and as a geometric mean.

Each layer's candidates are timed interleaved, round by round. "The best" is
a choice among noisy candidates (the winner's curse: the lowest of many
noisy medians is biased low, more so on the side with more candidates), so
the intervals come from :mod:`convbench.bestof`, which redoes the choice in
every resample (rounds resampled together, as they were measured) and bounds
each side's best between its luckiest tied candidate and its winner's own
draw: the interval carries the uncertainty of the choice.
"""

from __future__ import annotations

import math
import sys
from typing import Callable

import numpy as np

import convbench
from convbench import ConvSpec, get_algorithm
from convbench.bestof import best_vs_best, network_best_vs_best
from convbench.machine.threads import limit_threads
from convbench.registry import BUILTIN_MODULES, source_of

from bench_common import MOBILENET_DENSE, conv_call, interleaved
from outputs import Check

#: ResNet-50 3x3 layers, every distinct shape (input size, kernel, stride, in, out).
RESNET50_3X3 = [(56, 3, 1, 64, 64), (56, 3, 2, 128, 128), (28, 3, 1, 128, 128), (28, 3, 2, 256, 256),
                (14, 3, 1, 256, 256), (14, 3, 2, 512, 512), (7, 3, 1, 512, 512)]
N_BOOT = 2000


def ours_and_peers() -> tuple[list[str], list[str]]:
    """convbench's own algorithms (not naive, not a plugin) and the installed peers."""
    names = [a for a in convbench.list_algorithms() if a != "naive" and source_of(a) in BUILTIN_MODULES]
    peers = [a for a in names if getattr(get_algorithm(a), "peer", False)]
    return [a for a in names if a not in peers], peers


def _layer(hw: int, k: int, st: int, cin: int, cout: int, layout: str) -> ConvSpec:
    return ConvSpec(batch=1, in_channels=cin, out_channels=cout, height=hw, width=hw, kernel=k,
                    stride=st, padding=k // 2, layout=layout, dtype="float32")


def best_against(checks: list[Check], *, versus: str, quick: bool, min_rounds: int, min_time: float,
                 clock: Callable[[], float], bound: float) -> None:
    """Per layer of dense MobileNet v1 and ResNet-50 3x3: the best of ``versus``'s side
    (``"torch"`` alone, or every installed peer over both layouts) against the best
    convbench algorithm (both layouts), all interleaved; then the geometric mean per
    network, each with the selection redone per resample."""
    ours_names, peer_names = ours_and_peers()
    theirs_names = ["torch"] if versus == "torch" else peer_names
    layouts = ("nhwc",) if versus == "torch" else ("nhwc", "nchw")
    label_check = ("5 best convbench / torch" if versus == "torch" else "7 best convbench / best peer")
    rng = np.random.default_rng(0)
    for network, shapes in (("dense MobileNet v1", MOBILENET_DENSE), ("ResNet-50 3x3", RESNET50_3X3)):
        sides: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
        for hw, k, st, cin, cout in shapes[:: 3 if quick else 1]:
            cands, calls = [], []
            for layout in layouts:
                spec = _layer(hw, k, st, cin, cout, layout)
                x, w = spec.random_inputs(7)
                for a in ours_names + theirs_names:
                    if get_algorithm(a).supports(spec) is None:
                        with limit_threads(1):  # a peer sizes its thread pools at prepare
                            calls.append(conv_call(a, spec, x, w))
                        cands.append((a, layout, get_algorithm(a).implementation(spec)))
            with limit_threads(1):
                times = np.array(interleaved(calls, min_rounds, min_time, clock))
            ours = [i for i, c in enumerate(cands) if c[0] in ours_names]
            theirs = [i for i, c in enumerate(cands) if c[0] in theirs_names]
            # ratio = theirs / ours (> 1: convbench's best is faster)
            side = ([times[i] for i in ours], [times[i] for i in theirs])
            ratio, lo, hi = best_vs_best(*side, rng, N_BOOT, paired=True)
            sides.append(side)
            med = np.median(times, axis=1)
            o, t = min(ours, key=med.__getitem__), min(theirs, key=med.__getitem__)
            desc = spec.describe().replace(" nchw", "").replace(" nhwc", "")
            # per layer for the record: the floor is on the geometric mean
            checks.append(Check(f"{label_check} (per layer, no floor)", desc, ratio, lo, hi, math.nan, "record",
                                f"{cands[o][0]}:{cands[o][1]}", f"{cands[t][0]}:{cands[t][1]}",
                                spec.flops / med[o] / 1e9, spec.flops / med[t] / 1e9))
            print(f"  {label_check:30s} {desc:22s} {ratio:5.2f}  ({cands[o][2]} vs {cands[t][2]})",
                  file=sys.stderr, flush=True)
        geo = network_best_vs_best(sides, rng, N_BOOT, mean="geometric", paired=True)
        checks.append(Check(f"{label_check}, geometric mean", f"{len(sides)} {network} layers", *geo, bound,
                            "floor", "best", versus))


def not_measured(check: str, why: str) -> Check:
    """A floor that could not run here, with the reason."""
    return Check(check, measured=False, note=why)
