"""Measuring one group of cases: set-up, a checked warm-up, interleaved samples.

The unit of measurement is a :class:`~.plan.Group`: one layer in one layout
and dtype at one thread count, with every algorithm to compare on it. Its
cases are set up one by one (``prepare`` timed, a warm-up call kept as
``compile_s`` and checked against :func:`convbench.reference`, one untimed
call for memory, see :mod:`.footprint`), then timed *interleaved*, round by round,
so a drift of the machine does not favour whoever ran first. Each round
starts with a small fixed sgemm (the *reference kernel*), whose time every
sample of the round carries: the machine's speed while it was measured. The
baseline is sampled as long as any other case is, so every sample has a
baseline sample of its own round to be compared with (per-round speedups),
and the output of each case's last timed call is checked like the warm-up's.

One call measures one *repetition* of the group; the session
(:mod:`.session`) runs each repetition in a fresh worker process, at another
moment of the sweep, and :mod:`.repeats` combines them.

:func:`measure_group` takes and returns plain data (picklable), so it runs
as well in the isolated worker (:mod:`.worker`) as in this process; one
:class:`Monitor` hears what it does. Writing is the session's job
(:mod:`.session`).
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..algorithm import unsupported_reason
from ..machine.memory import check_fits
from ..machine.threads import check_threads, limit_threads, pinned, pool_sample_start, pool_threads_used, thread_report
from ..reference import error_floor, reference
from ..registry import get_algorithm
from ..results.schema import sample_row, spec_columns, summary_row
from .answers import Check, check_last, check_output, raised as _raised
from .footprint import measure_memory
from .refkernel import REF_FLOPS, ReferenceKernel  # noqa: F401 (REF_FLOPS: the session's)
from .phasing import PhaseTimer, phase_rows
from ..machine.cache import cold_cache
from ..machine.contention import RAN_MIN, LoadMeter, contended, cpu_clock, ran_share
from ..timing import Sampler, TimingSettings, loops_for, summarize
from .plan import Case, Group

Row = dict[str, Any]

@dataclass
class GroupResult:
    """The rows of a group's cases (in the group's order) and their samples (in the order taken)."""

    rows: list[Row] = field(default_factory=list)
    samples: list[Row] = field(default_factory=list)
    phases: list[Row] = field(default_factory=list)  # phases.csv rows (repetition 0)



def base_row(case: Case, seed: int, baseline: str | None) -> Row:
    """A summary row with the columns of a case known before measuring it."""
    layer = case.layer
    return summary_row(
        case_index=case.index, case_id=case.case_id, layer=layer.name, layer_class=layer.layer_class,
        network=layer.network, description=case.spec.describe(), count=layer.count, algorithm=case.algorithm,
        status=None, reason="", threads=case.threads, **spec_columns(case.spec),
        baseline=baseline or "", seed=seed, n_samples=0, cache=case.cache,
    )


@dataclass
class _Live:
    pos: int
    case: Case
    row: Row
    call: Callable[[np.ndarray], np.ndarray]
    x: np.ndarray
    sampler: Sampler
    samples: list[tuple[int, Row]] = field(default_factory=list)
    last: Any = None  # the output of the last timed call
    check: Check | None = None
    baseline: bool = False
    phase_rows: list[Row] = field(default_factory=list)
    retaken: int = 0  # samples retaken because another process preempted them
    pool_threads: int = 0  # the most threads the kernels' pool ran one step of a sample on


class Monitor:
    """What :func:`measure_group` reports as it goes; every hook is a no-op here.

    One monitor serves every listener: the command line's progress bar, and
    the isolated worker (:mod:`.worker`), which tells the parent which case
    is running, so that a crash or a hang is charged to the right case, and
    hands over each row as soon as it is final. ``pos`` is the position of a
    case in ``group.cases`` (-1: the group's own set-up). Hooks are called
    outside the timed regions.
    """

    def machine(self, env: dict[str, Any]) -> None:
        """The run's machine was probed (``env`` as env.json holds it, the noise probe's
        verdict included): called once, before anything is measured."""

    def begin(self, group: Group) -> None:
        """``group`` is about to be measured."""

    def started(self, pos: int) -> None:
        """Case ``pos`` starts its set-up."""

    def stage(self, pos: int, stage: str) -> None:
        """Case ``pos`` entered ``stage`` ("supports()", "prepare()", ...)."""

    def sample(self, pos: int, n: int) -> None:
        """Case ``pos`` starts its sample ``n``."""

    def sampling(self, n_live: int) -> None:
        """Set-up is over; ``n_live`` cases are sampled interleaved from now on."""

    def finished(self, pos: int, row: Row, samples: list[tuple[int, Row]], phases: list[Row] | None = None) -> None:
        """Case ``pos`` is final: its row (speedup excepted), its samples as
        ``(seq, sample row)``, ``seq`` numbering the group's samples in the order
        taken, and its ``phases.csv`` rows (repetition 0 only)."""


def measure_group(
    group: Group,
    timing: TimingSettings,
    seed: int = 0,
    baseline: str | None = None,
    *,
    memory_limit: int | None = None,
    monitor: Monitor | None = None,
    repetition: int = 0,
    pin: int | None = None,
    phases: bool = True,
) -> GroupResult:
    """Measure every case of ``group`` once (one repetition); never raises for a case's own failure.

    Each case ends as one row with status ``ok``, ``skipped`` (unsupported,
    with the algorithm's reason, or refused by the memory guard), ``failed``
    (wrong answer) or ``error`` (raised). ``monitor`` hears each step.
    ``memory_limit`` (bytes) caps what a case may hold (input + output +
    weights + declared workspace) below MemAvailable. ``repetition`` tags
    the samples (memory is measured in repetition 0 only: it does not
    drift); ``pin`` is the core to run on (``None``: anywhere). ``phases``:
    time the steps of each call in repetition 0 (:mod:`.phasing`). A group
    whose ``cache`` is ``cold`` evicts the operands from every cache level
    before each timed call (:mod:`convbench.machine.cache`), one call a sample.
    """
    spec = group.spec
    rows = {c.algorithm: base_row(c, seed, baseline) for c in group.cases}
    result = GroupResult()
    mon = monitor or Monitor()

    def finish(pos: int, case: Case, samples: list[tuple[int, Row]], phase_rows: list[Row] | None = None) -> None:
        row = rows[case.algorithm]
        _rate(row, spec.flops)
        result.phases.extend(phase_rows or [])
        mon.finished(pos, row, samples, phase_rows or [])

    mon.begin(group)
    mon.stage(-1, "the group's set-up")
    reason = check_threads(group.threads) or check_fits(spec, 0, memory_limit)
    flush: Callable[[], None] | None = None
    if not reason and group.cache == "cold":
        try:
            flush = cold_cache(memory_limit).flush
        except (ValueError, MemoryError) as exc:
            reason = f"cold cache: {exc}"
    if reason:
        for pos, case in enumerate(group.cases):
            rows[case.algorithm].update(status="skipped", reason=reason)
            finish(pos, case, [])
        result.rows = [rows[c.algorithm] for c in group.cases]
        return result

    mon.stage(-1, "creating the inputs")
    x_master, w_master = spec.random_inputs(seed)
    for row in rows.values():  # a u8s8 case's drawn scales, zero points and bias
        row["quant"] = w_master.describe() if spec.is_quantized else None
    ref: np.ndarray | None = None
    live: list[_Live] = []
    with pinned(pin), limit_threads(group.threads):
        pools = thread_report()
        for pos, case in enumerate(group.cases):
            row = rows[case.algorithm]
            row.update(numba_threads=pools["numba_threads"], blas_threads=pools["blas_threads"],
                       fft_workers=pools["fft_workers"])
            mon.started(pos)
            stage = "supports()"
            mon.stage(pos, stage)
            try:
                algo = get_algorithm(case.algorithm)
                why = unsupported_reason(algo, spec)
                if why:
                    row.update(status="skipped", reason=str(why))
                    finish(pos, case, [])
                    continue
                stage = "workspace_bytes()"
                mon.stage(pos, stage)
                ws = algo.workspace_bytes(spec)  # None: unknown, an empty cell; the guard counts it as 0
                row["workspace_bytes"] = None if ws is None else int(ws)
                too_big = check_fits(spec, row["workspace_bytes"] or 0, memory_limit)
                if too_big:
                    row.update(status="skipped", reason=too_big)
                    finish(pos, case, [])
                    continue
                stage = "tolerance_for()"
                mon.stage(pos, stage)
                tol = float(algo.tolerance_for(spec.dtype))
                row["error_tolerance"] = tol
                x = x_master.copy()
                stage = "prepare()"
                mon.stage(pos, stage)
                t0 = time.perf_counter()
                call = algo.prepare(spec, w_master.copy())
                row["prepare_s"] = time.perf_counter() - t0
                stage = "implementation()"
                mon.stage(pos, stage)
                row["implementation"] = str(algo.implementation(spec))
                stage = "the warm-up call"
                mon.stage(pos, stage)
                t0 = time.perf_counter()
                y = call(x)
                row["compile_s"] = time.perf_counter() - t0
                if ref is None:
                    stage = "the reference"
                    mon.stage(pos, stage)
                    ref = reference(spec, x_master, w_master)
                    floor = error_floor(x_master, w_master)
                status, why, errors = check_output(y, spec, ref, floor, tol)
                if status == "ok" and not np.array_equal(x, x_master):
                    status, why = "failed", "the call modified its input array"
                    x[...] = x_master
                row.update(status=status, reason=why, **errors)
                del y
                stage = "the warm-up call"
                mon.stage(pos, stage)
                for _ in range(timing.warmup - 1):
                    call(x)
                if repetition == 0:
                    stage = "the memory measurement"
                    mon.stage(pos, stage)
                    row.update(measure_memory(algo, spec, w_master.copy(), x))
                stage = "the calibration call"
                mon.stage(pos, stage)
                t0 = time.perf_counter()
                call(x)
                # cold: one call a sample, each after an eviction
                loops = 1 if flush else loops_for(time.perf_counter() - t0, timing.min_sample_time_s)
            except (Exception, SystemExit) as exc:  # any failure of the algorithm is a row, not a crash
                row.update(status="error", reason=_raised(stage, exc))
                finish(pos, case, [])
                continue
            row["loops"] = loops
            check = (lambda y, tol=tol: check_output(y, spec, ref, floor, tol))
            live.append(_Live(pos, case, row, call, x, Sampler(timing, loops), check=check,
                              baseline=case.algorithm == baseline))

        live_at = {item.pos: item for item in live}
        mon.sampling(len(live))
        if phases and repetition == 0:  # the phase pass follows the sampling: finish after it
            done: list[_Live] = []
            _sample_interleaved(live, result, lambda pos, case, smp: done.append(live_at[pos]), mon,
                                repetition, flush)
            done.sort(key=lambda i: i.pos)
            _phase_pass(done, timing, flush, mon)
            for item in done:
                finish(item.pos, item.case, item.samples, item.phase_rows)
        else:
            _sample_interleaved(live, result, finish, mon, repetition, flush)

    finish_rows([rows[c.algorithm] for c in group.cases], spec.flops, baseline)
    result.rows = [rows[c.algorithm] for c in group.cases]
    return result


def _sample_interleaved(
    live: list[_Live], result: GroupResult, finish: Callable[[int, Case, list[tuple[int, Row]]], None],
    mon: Monitor, repetition: int = 0, flush: Callable[[], None] | None = None,
) -> None:
    """Round by round, the reference kernel then one sample of every unfinished
    case, in a rotating order; the baseline stays while any other case is left."""
    active = list(live)
    rnd = 0
    seq = 0
    ref_kernel = ReferenceKernel()
    load = LoadMeter().start()
    # the cyclic GC is off while sampling, so a collection does not land in one
    # algorithm's sample; calls free their arrays by reference counting anyway
    gc.collect(0)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while active:
            ref_time = ref_kernel.time()
            shift = rnd % len(active)
            for item in active[shift:] + active[:shift]:
                call, x, loops, c = item.call, item.x, item.sampler.loops, item.case
                n = len(item.samples)
                mon.sample(item.pos, n)
                cpu = cpu_clock(c.threads)
                try:
                    while True:  # a sample another process preempted is retaken, a bounded number of times
                        if flush is not None:  # untimed, but spent: it counts toward the time rules
                            t_flush = time.perf_counter()
                            flush()
                            item.sampler.elapsed_s += time.perf_counter() - t_flush
                        c0, t0 = pool_sample_start(cpu, c.algorithm), time.perf_counter()  # a peer's: pool asleep
                        for _ in range(loops):
                            y = call(x)
                        elapsed = time.perf_counter() - t0
                        item.pool_threads = max(item.pool_threads, used := pool_threads_used())
                        ran = ran_share(cpu() - c0, elapsed, min(c.threads, used or c.threads))
                        if ran >= RAN_MIN or item.retaken >= item.sampler.settings.min_samples:
                            break
                        item.retaken += 1
                        item.sampler.elapsed_s += elapsed
                except (Exception, SystemExit) as exc:
                    item.row.update(status="error", reason=_raised(f"sample {n}", exc))
                    continue
                item.last = y
                per_call = item.sampler.add(elapsed)
                sample = sample_row(
                    case_index=c.index, case_id=c.case_id, layer=c.layer.name, algorithm=c.algorithm,
                    layout=c.spec.layout, dtype=c.spec.dtype, threads=c.threads, repetition=repetition,
                    round=rnd, sample=n, loops=loops, time_s=per_call, ref_time_s=ref_time, cache=c.cache,
                    ran=ran,
                )
                item.samples.append((seq, sample))
                result.samples.append(sample)
                seq += 1
            others_left = any(not i.baseline and i.row["status"] != "error" and not i.sampler.done for i in active)
            finished = [i for i in active if i.row["status"] == "error"
                        or (i.sampler.done and not (i.baseline and others_left))]
            for item in finished:
                item.row.update(summarize(item.sampler.samples, item.sampler.settings.confidence))
                seen, n_taken = load.stop(), len(item.sampler.samples) + item.retaken
                item.row.update(retaken=item.retaken, contended=contended(item.retaken, n_taken, seen["other_load"]),
                                pool_threads=item.pool_threads, **seen)
                check_last(item.row, item.check, item.last)
                item.last = None
                finish(item.pos, item.case, item.samples)
            active = [i for i in active if i not in finished]
            rnd += 1
    finally:
        if gc_was_enabled:
            gc.enable()


def _phase_pass(items: list[_Live], timing: TimingSettings, flush: Callable[[], None] | None,
                mon: Monitor) -> None:
    """The phase pass of the group's ok cases (:mod:`.phasing`), interleaved round by round in
    a rotating order like their whole-call samples; a step that raises is an ``error`` row."""
    timers: dict[int, PhaseTimer] = {}

    def attempt(item: _Live, action: Callable[[], None]) -> None:
        mon.stage(item.pos, "the phase pass")
        try:
            action()
        except (Exception, SystemExit) as exc:
            item.row.update(status="error", reason=_raised("the phase pass", exc))
            timers.pop(item.pos, None)

    for item in (i for i in items if i.row["status"] == "ok"):
        attempt(item, lambda i=item: timers.__setitem__(i.pos, PhaseTimer(i.call, i.x, timing, i.sampler.loops, flush)))
    active, rnd = [i for i in items if i.pos in timers], 0
    ref_kernel = ReferenceKernel()  # run every round, as in the sampling: the same cache traffic
    while active:
        ref_kernel.time()
        shift = rnd % len(active)
        for item in active[shift:] + active[:shift]:
            if item.pos in timers:
                attempt(item, timers[item.pos].sample)
        active = [i for i in active if i.pos in timers and not timers[i.pos].done]
        rnd += 1
    for item in items:
        if item.pos in timers:
            item.phase_rows, columns = phase_rows(item.case, timers[item.pos].result(item.sampler.samples))
            item.row.update(columns)


def _rate(row: Row, flops: int) -> None:
    med = row.get("time_median_s")
    if med is not None and not math.isnan(med) and med > 0:
        row["gflops"] = flops / med / 1e9


def finish_rows(rows: list[Row], flops: int, baseline: str | None) -> None:
    """GFLOP/s of every row and, where the baseline is ok, speedups (rows of one group)."""
    for row in rows:
        _rate(row, flops)
    base = next((r for r in rows if baseline and r["algorithm"] == baseline), None)
    base_med = base.get("time_median_s") if base and base.get("status") == "ok" else None
    for row in rows:
        med = row.get("time_median_s")
        if base_med and row["status"] == "ok" and med and not math.isnan(med):
            row["speedup_vs_baseline"] = base_med / med

