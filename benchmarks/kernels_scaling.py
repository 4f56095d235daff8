"""Floor 3 of ``benchmarks/kernels.py`` (issue 31): two threads against one, and where a
call loses its second core.

Every built-in (and, for the record, every peer) is timed at one and at two threads,
round by round, each round followed by the machine's own sgemm at one and two threads
(:func:`two_vs_one_quiet`). A round counts only where that sgemm scaled >= 1.8x: in the
others another tenant of the VM held one of the two vCPUs (they come and go within
seconds to minutes, faster than a run). A check holding fewer than six such rounds is
not judged, and says how many it had. Judging a whole check on its rounds' median sgemm
instead left half of the 632 shipped-layer checks not judged on the 2-vCPU Zen 3 VM.

On the three large layers each built-in's phases are timed in the same rounds, step by
step after the whole call (:func:`call_steps`), and the check carries them in
``extra["phases"]``, from the rounds its result comes from: each step's share of the
one-thread call and its own two-thread speedup. A call that misses 1.6x
then says which step held it back (a step left on one thread, a copy bound by memory,
BLAS products that do not scale), next to the machine's memory read, recorded beside
the sgemm. ``kernels.py`` records this module's hash in its output (:func:`module_hashes`),
so ``readme_tables.py`` finds the output stale once this module changes.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from typing import Any, Callable

import numpy as np

import convbench
from convbench import get_algorithm
from convbench.kernels.memory_read import stream_read
from convbench.machine.threads import limit_threads
from convbench.phases import run_steps, steps_of

from bench_common import conv_call, layer, median_ci
from outputs import Check
from peer_checks import ours_and_peers

#: Rounds of a large layer's check, against the run's ``min_rounds``: 27 checks, where
#: seven rounds left most intervals straddling 1.6 on a noisy VM.
BIG_ROUNDS_FACTOR = 3
#: A round counts only where the machine's sgemm (1024^3), timed right after it, scaled this much.
MACHINE_SCALES = 1.8
#: The fewest quiet rounds a judged check holds: six, the fewest whose extremes are a 95% CI
#: of their median (of five, the extremes cover 94%, and ``median_ci`` gives none).
MIN_QUIET_ROUNDS = 6
#: Rounds a check may take to find ``min_rounds`` quiet ones, in multiples of ``min_rounds``.
MAX_ROUNDS_FACTOR = 2


def module_hashes() -> dict[str, str]:
    """sha256 of this module, for the ``data["modules"]`` of ``kernels.py``'s output."""
    path = os.path.abspath(__file__)
    with open(path, "rb") as f:
        return {os.path.basename(path): hashlib.sha256(f.read()).hexdigest()}


def shipped_layers() -> list[tuple[str, convbench.ConvSpec]]:
    """Every layer of configs/paper.yaml and configs/mobilenet.yaml (grids included), float32 NHWC."""
    from convbench.config import load_config

    here = os.path.dirname(os.path.abspath(__file__))
    return [(f"{name}/{lay.name}", lay.spec("nhwc", "float32")) for name in ("paper", "mobilenet")
            for lay in load_config(os.path.join(here, "..", "configs", f"{name}.yaml")).layers]


def warm_times(calls: dict[int, Callable[[], object]]) -> tuple[float, float]:
    """(time at 1 thread, time at 2 threads) of one round, each timed call right after an untimed one
    at the same count: the pools awake, as a sweep's samples find them (switching the count, 0.6 ms,
    before a timed call sends the helpers to sleep; docs/threads.md states that wake-up apart)."""
    took = []
    for t in (1, 2):
        with limit_threads(t):
            calls[t]()
            t0 = time.perf_counter()
            calls[t]()
            took.append(time.perf_counter() - t0)
    return took[0], took[1]


def two_vs_one_warm(make: Callable[[], Callable[[], object]], min_rounds: int, min_time: float
                    ) -> tuple[float, float, float]:
    """Median (and CI) of time(1 thread) / time(2 threads), round by round (:func:`warm_times`).
    ``make`` prepares the call under each count, as a sweep prepares each case under its own."""
    calls = _prepared(make)
    ratios: list[float] = []
    start = time.perf_counter()
    while len(ratios) < min_rounds or (time.perf_counter() - start < min_time and len(ratios) < 50 * min_rounds):
        a, b = warm_times(calls)
        ratios.append(a / b)
    return median_ci(ratios)


Steps = list[tuple[str, dict[int, Callable[[], object]]]]


def two_vs_one_quiet(make: Callable[[], Callable[[], object]], probe: Callable[[], object], min_rounds: int,
                     min_time: float, steps: Steps = ()) -> tuple[float, float, float, dict[str, Any]]:
    """:func:`two_vs_one_warm` over the quiet rounds: each round times ``probe`` (the machine's sgemm) at
    one and two threads right after the call, and only rounds whose probe scaled >= :data:`MACHINE_SCALES`
    count, since in the others another tenant had one of the two vCPUs. Rounds go on until
    ``min_rounds`` are quiet (and ``min_time`` has passed), at most :data:`MAX_ROUNDS_FACTOR` x
    ``min_rounds``. Returns the median and CI of the quiet rounds (of all rounds where fewer than
    :data:`MIN_QUIET_ROUNDS` were quiet: then the check is not judged) and a record of the rounds:
    ``{"rounds", "quiet_rounds", "sgemm", "all_rounds"}`` (the probe's median ratio, the call's over
    every round). ``steps`` (:func:`call_steps`) are timed in the same rounds, after the call, and
    the record's ``"phases"`` gives each ``[share of the one-thread call, two-thread speedup]``, from
    the same rounds as the call's result."""
    calls = _prepared(make)
    rounds: list[tuple[float, float, list[tuple[float, float]]]] = []  # (call's ratio, probe's, steps' times)
    start = time.perf_counter()
    while len(rounds) < MAX_ROUNDS_FACTOR * min_rounds:
        quiet = sum(p >= MACHINE_SCALES for _, p, _ in rounds)
        if quiet >= min_rounds and time.perf_counter() - start >= min_time:
            break
        a, b = warm_times(calls)
        took = [warm_times(fns) for _, fns in steps]
        pa, pb = warm_times({1: probe, 2: probe})
        rounds.append((a / b, pa / pb, took))
    kept = [r for r in rounds if r[1] >= MACHINE_SCALES]
    used = kept if len(kept) >= MIN_QUIET_ROUNDS else rounds
    record: dict[str, Any] = {"rounds": len(rounds), "quiet_rounds": len(kept),
                              "sgemm": float(np.median([p for _, p, _ in rounds])),
                              "all_rounds": float(np.median([r for r, _, _ in rounds]))}
    if steps:
        one = [float(np.median([took[i][0] for _, _, took in used])) for i in range(len(steps))]
        record["phases"] = {name: [one[i] / sum(one), float(np.median([took[i][0] / took[i][1] for _, _, took in used]))]
                            for i, (name, _) in enumerate(steps)}
    return (*median_ci([r for r, _, _ in used]), record)


def _prepared(make: Callable[[], Callable[[], object]]) -> dict[int, Callable[[], object]]:
    calls = {}
    for t in (1, 2):
        with limit_threads(t):
            calls[t] = make()
    return calls


def call_steps(algo: str, spec: convbench.ConvSpec, x: np.ndarray, w: np.ndarray) -> Steps:
    """The phases of ``algo``'s call on ``spec`` (:func:`convbench.phases.steps_of`), each as a call at
    1 and at 2 threads (prepared under each count) on its own input as the whole call passes it on;
    a repeated step name (two layout copies) is numbered."""
    bound = {}
    for t in (1, 2):
        with limit_threads(t):
            call = get_algorithm(algo).prepare(spec, w)
            bound[t] = [(lambda fn=fn, v=v: fn(v)) for (_, fn), v in zip(steps_of(call), run_steps(call, x))]
    steps: Steps = []
    seen: dict[str, int] = {}
    for i, (name, _) in enumerate(steps_of(call)):
        seen[name] = seen.get(name, 0) + 1
        steps.append((name if seen[name] == 1 else f"{name} {seen[name]}", {t: bound[t][i] for t in (1, 2)}))
    return steps


def scaling_rows(rows: list[Check], min_rounds: int, min_time: float) -> None:
    """Floor 3 (issue 31): every built-in >= 1.6x on three layers >= 50 MFLOP (with its phases) and
    >= 0.95x on every shipped layer, peers beside them for the record; a check is judged only where
    the machine's sgemm, timed in the same rounds, scaled >= 1.8x."""
    from convbench.algorithm import unsupported_reason

    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (1024, 1024)).astype(np.float32)
    sgemm = lambda: a @ a  # noqa: E731
    records = (("3 machine: sgemm 2 threads / 1 (>= 1.8 to judge floor 3)", "1024^3", sgemm, "numpy"),
               ("3 machine: memory read 2 threads / 1, for the record", "256 MiB", stream_read(), "numba"))
    for check, name, call, lib in records:  # the read: the ceiling of a step that streams memory
        r = two_vs_one_warm(lambda: call, min_rounds, min_time)
        rows.append(Check(check, name, *r, float("nan"), "record", lib))
        print(f"  {check[:34]:34s} {name:24s} {r[0]:5.2f}", file=sys.stderr, flush=True)
    ours, peers = ours_and_peers()
    big = [(s.describe(), s) for s in (layer(64, 64, 56, 3), layer(256, 256, 14, 3), layer(512, 512, 14, 1))]
    for group, layers, bound, rounds in (
            ("3 2 threads / 1 thread, >= 50 MFLOP", big, 1.6, BIG_ROUNDS_FACTOR * min_rounds),
            ("3 2 threads / 1 thread, paper + mobilenet", shipped_layers(), 0.95, min_rounds)):
        for name, spec in layers:
            x, w = spec.random_inputs(5)
            for algo in sorted([*ours, "naive"]) + sorted(peers):
                if unsupported_reason(get_algorithm(algo), spec) is not None:
                    continue  # a layer or dtype it does not run (an 8-bit-only peer, Winograd on 1x1)
                peer = algo in peers
                steps = call_steps(algo, spec, x, w) if not peer and bound > 1 else []
                med, lo, hi, seen = two_vs_one_quiet(lambda: conv_call(algo, spec, x, w), sgemm, rounds, min_time,
                                                     steps)
                quiet = seen["quiet_rounds"] >= MIN_QUIET_ROUNDS
                why = (f"the machine's sgemm scaled >= {MACHINE_SCALES}x in only {seen['quiet_rounds']} of "
                       f"{seen['rounds']} rounds (median {seen['sgemm']:.2f}x); the result is every round's")
                rows.append(Check(group + (", peers for the record" if peer else ""), f"{algo}, {name}", med, lo,
                                  hi, float("nan") if peer else bound, "record" if peer else "floor", algo,
                                  judged=quiet or peer, note="" if quiet or peer else why, extra=seen))
                where = " ".join(f"{k} {s:.0%} x{r:.2f}" for k, (s, r) in seen.get("phases", {}).items())
                print(f"  {'threads ' + algo:34s} {name[:40]:40s} {med:5.2f} ({seen['quiet_rounds']}/"
                      f"{seen['rounds']} quiet) {where}", file=sys.stderr, flush=True)
