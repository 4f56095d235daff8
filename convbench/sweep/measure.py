"""Walks a sweep: plans the cases, measures them layer by layer, yields tidy rows.

The unit of measurement is a :class:`Group`: one layer in one layout and
dtype at one thread count, with every algorithm to compare on it. Its cases
are set up one by one (``prepare`` timed, a warm-up call kept as
``compile_s`` and checked against :func:`convbench.reference`, one untimed
call under tracemalloc for memory), then timed *interleaved*, round by round,
so a drift of the machine does not favour whoever ran first.

:func:`measure_group` takes and returns plain data (picklable), so it can
run in a worker process; writing is :class:`convbench.results.ResultsWriter`'s
job, and :func:`run` joins the two.
"""

from __future__ import annotations

import gc
import math
import sys
import time
import tracemalloc
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..machine.malloc_policy import keep_freed_memory
from ..config import Config, ConfigError, Layer, dump_config
from ..machine.memory import check_fits
from ..reference import error_floor, reference, relative_error
from ..registry import get_algorithm
from ..spec import ConvSpec
from ..machine.threads import check_threads, limit_threads, thread_report
from ..timing import Sampler, TimingSettings, loops_for, quick as quick_settings, summarize

Row = dict[str, Any]

#: Seconds a case may go without progress (its set-up, or any one sample) in
#: the isolated worker before it is stopped and becomes a ``timeout`` row.
DEFAULT_CASE_TIMEOUT = 300.0


@dataclass(frozen=True)
class Case:
    """One measurement: a layer variant, an algorithm, a thread count."""

    index: int  # position in the whole (unsharded) sweep
    layer: Layer
    spec: ConvSpec
    algorithm: str
    threads: int

    @property
    def case_id(self) -> str:
        return f"{self.layer.name}|{self.spec.layout}|{self.spec.dtype}|t{self.threads}|{self.algorithm}"


@dataclass(frozen=True)
class Group:
    """The cases measured together, interleaved: same spec, same threads."""

    index: int
    layer: Layer
    spec: ConvSpec
    threads: int
    cases: tuple[Case, ...]


@dataclass
class Plan:
    """Everything a run will do, decided before anything is measured."""

    config: Config
    algorithms: list[str]
    threads: list[int]
    timing: TimingSettings
    groups: list[Group]
    quick: bool = False
    shard: tuple[int, int] | None = None
    plugins: list[str] = field(default_factory=list)  # --plugin targets, recorded in config.yaml

    @property
    def cases(self) -> list[Case]:
        return [c for g in self.groups for c in g.cases]

    @property
    def n_cases(self) -> int:
        return sum(len(g.cases) for g in self.groups)

    def config_as_run(self) -> dict[str, Any]:
        data = self.config.as_run(self.algorithms, self.threads, self.timing)
        data["plugins"] = list(dict.fromkeys([*data["plugins"], *self.plugins]))
        return data


@dataclass
class GroupResult:
    rows: list[Row] = field(default_factory=list)
    samples: list[Row] = field(default_factory=list)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` (1-based: 1/4 ... 4/4) as ``(I, N)``; ``ValueError`` names the problem."""
    if text is None:
        return None
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise ValueError(f"--shard must look like I/N, e.g. 1/4; got {text!r}") from None
    if n < 1 or not 1 <= i <= n:
        raise ValueError(f"--shard {text}: need 1 <= I <= N (shards are numbered 1..N)")
    return i, n


def _int_list(text: str | list[int] | None, what: str) -> list[int] | None:
    if text is None or isinstance(text, list):
        return text
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise ValueError(f"{what} must be integers >= 1, got {text!r}")
    return values


def plan(
    config: Config,
    *,
    algorithms: str | list[str] | None = None,
    threads: str | list[int] | None = None,
    layers: str | None = None,
    quick: bool = False,
    shard: str | tuple[int, int] | None = None,
    plugins: list[str] | None = None,
) -> Plan:
    """Expand a config (with command-line overrides) into groups of cases.

    Cases are numbered in sweep order (layer, layout, dtype, threads,
    algorithm). ``shard=(I, N)`` keeps every N-th group starting at I-1, so
    the N shards partition the sweep and each keeps whole groups (speedups
    need the baseline measured beside the others).
    """
    from ..config import resolve_algorithms

    config = config.select_layers(layers)
    names = (
        resolve_algorithms(algorithms, config.baseline, "--algorithms")
        if algorithms is not None
        else config.algorithm_names()
    )
    counts = _int_list(threads, "--threads") or config.threads
    timing = quick_settings(config.timing) if quick else config.timing
    shard_t = parse_shard(shard) if isinstance(shard, str) else shard
    groups: list[Group] = []
    index = 0
    gi = 0
    for layer in config.layers:
        for spec in layer.variants():
            for t in counts:
                cases = []
                for name in names:
                    cases.append(Case(index, layer, spec, name, t))
                    index += 1
                if shard_t is None or gi % shard_t[1] == shard_t[0] - 1:
                    groups.append(Group(gi, layer, spec, t, tuple(cases)))
                gi += 1
    if not groups:
        raise ConfigError(
            f"{config.path}: --shard {shard_t[0]}/{shard_t[1]} is empty: the sweep has only {gi} group(s) "
            "(layer variants x thread counts); use at most that many shards"
            if shard_t else f"{config.path}: the sweep is empty: no layer to measure"
        )
    return Plan(config, names, counts, timing, groups, quick, shard_t, list(plugins or []))


# -- measuring ---------------------------------------------------------------------


def base_row(case: Case, seed: int, baseline: str | None) -> Row:
    """The columns of a case known before measuring it."""
    s, layer = case.spec, case.layer
    return {
        "case_index": case.index, "case_id": case.case_id,
        "layer": layer.name, "layer_class": layer.layer_class, "network": layer.network,
        "description": s.describe(), "count": layer.count, "algorithm": case.algorithm,
        "status": None, "reason": "", "layout": s.layout, "dtype": s.dtype, "threads": case.threads,
        "batch": s.batch, "in_channels": s.in_channels, "out_channels": s.out_channels,
        "height": s.height, "width": s.width, "kernel_h": s.kernel_h, "kernel_w": s.kernel_w,
        "stride_h": s.stride_h, "stride_w": s.stride_w, "pad_top": s.pad_top,
        "pad_bottom": s.pad_bottom, "pad_left": s.pad_left, "pad_right": s.pad_right,
        "dilation_h": s.dilation_h, "dilation_w": s.dilation_w, "groups": s.groups,
        "output_height": s.output_height, "output_width": s.output_width, "flops": s.flops,
        "baseline": baseline or "", "seed": seed, "n_samples": 0,
    }


def _nrt_allocs() -> int | None:
    """numba's runtime allocation count (NRT stats); None where unavailable.

    NRT statistics are off unless NUMBA_NRT_STATS=1 was set before numba
    initialised its runtime; ``memsys_enable_stats`` switches them on at any
    time (checked with numba 0.68), and the runner only uses differences.
    The *bytes* numba allocates are seen by tracemalloc: numba's NRT
    allocator is ``PyMem_RawMalloc`` (``memsys_use_cpython_allocator``),
    which tracemalloc traces, so ``peak_bytes`` covers numpy and numba alike.
    """
    try:
        from numba.core.runtime import _nrt_python, rtsys

        _nrt_python.memsys_enable_stats()
        return int(rtsys.get_allocation_stats().alloc)
    except Exception:  # pragma: no cover - other numba versions
        return None


def measure_memory(algorithm: Any, spec: ConvSpec, weight: np.ndarray, x: np.ndarray) -> Row:
    """One untimed prepare + call under tracemalloc: what they allocated.

    ``prepare_bytes``: memory the prepared call keeps (packed weights,
    indirection buffer, transforms). ``peak_bytes``: peak of what one call
    allocated, its output included. ``measured_workspace_bytes``: the part
    of both beyond a copy of the weights and the output, comparable with the
    analytic ``workspace_bytes``.
    """
    # No gc.collect() here: it costs ~0.2 s per call once numba has compiled
    # (many live objects), and a collection during tracing can only lower the peak.
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        call = algorithm.prepare(spec, weight)
        prepared = tracemalloc.get_traced_memory()[0] - start
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        a0 = _nrt_allocs()
        y = call(x)
        a1 = _nrt_allocs()
        peak = tracemalloc.get_traced_memory()[1] - before
        del y, call
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return {
        "prepare_bytes": int(prepared),
        "peak_bytes": int(peak),
        "measured_workspace_bytes": int(max(0, prepared - spec.weight_bytes) + max(0, peak - spec.output_bytes)),
        "numba_allocs": (a1 - a0) if a0 is not None and a1 is not None else None,
    }


def _check_output(y: Any, spec: ConvSpec, ref: np.ndarray, floor: float, tol: float) -> tuple[str, str, float]:
    """(status, reason, max_rel_err) of a call's answer."""
    if not isinstance(y, np.ndarray):
        return "failed", f"returned {type(y).__name__}, not a numpy array", math.nan
    if tuple(y.shape) != spec.output_shape:
        return "failed", f"output shape {tuple(y.shape)}, expected {spec.output_shape}", math.nan
    if y.dtype != spec.np_dtype:
        return "failed", f"output dtype {y.dtype}, expected {spec.dtype}", math.nan
    err = relative_error(y, ref, floor)
    if not err <= tol:
        return "failed", f"max relative error {err:.3g} exceeds tolerance {tol:.3g}", err
    return "ok", "", err


def _raised(stage: str, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{stage} raised {type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@dataclass
class _Live:
    pos: int
    case: Case
    row: Row
    call: Callable[[np.ndarray], np.ndarray]
    x: np.ndarray
    sampler: Sampler
    samples: list[Row] = field(default_factory=list)


Progress = Callable[[Case, bool], None]


class Monitor:
    """What :func:`measure_group` reports as it goes; every hook is a no-op here.

    ``pos`` is the position of the case in ``group.cases`` (-1: the group's
    own setup). The isolated worker (:mod:`convbench.sweep.isolation`) implements
    these to tell the parent which case is running, so a crash or a hang is
    charged to the right case, and to hand over each row as soon as it is
    final. They are called outside the timed regions.
    """

    def stage(self, pos: int, stage: str) -> None:
        """Case ``pos`` entered ``stage`` ("supports()", "prepare()", ...)."""

    def sample(self, pos: int, n: int) -> None:
        """Case ``pos`` starts its sample ``n``."""

    def sampling(self, n_live: int) -> None:
        """Set-up is over; ``n_live`` cases are sampled interleaved from now on."""

    def finished(self, pos: int, row: Row, samples: list[Row]) -> None:
        """Case ``pos`` is final: its row (speedup excepted) and its samples."""


_NO_MONITOR = Monitor()


def measure_group(
    group: Group,
    timing: TimingSettings,
    seed: int = 0,
    baseline: str | None = None,
    progress: Progress | None = None,
    *,
    memory_limit: int | None = None,
    monitor: Monitor | None = None,
) -> GroupResult:
    """Measure every case of ``group``; never raises for a case's own failure.

    Each case ends as one row with status ``ok``, ``skipped`` (unsupported,
    with the algorithm's reason, or refused by the memory guard), ``failed``
    (wrong answer) or ``error`` (raised). ``progress(case, done)`` is called
    as cases start and finish. ``memory_limit`` (bytes) caps what a case may
    hold (input + output + weights + declared workspace) below MemAvailable.
    """
    spec = group.spec
    rows = {c.algorithm: base_row(c, seed, baseline) for c in group.cases}
    result = GroupResult()
    note = progress or (lambda case, done: None)
    mon = monitor or _NO_MONITOR

    def finish(pos: int, case: Case, samples: list[Row]) -> None:
        row = rows[case.algorithm]
        _rate(row, spec.flops)
        mon.finished(pos, row, samples)
        note(case, True)

    mon.stage(-1, "the group's set-up")
    reason = check_threads(group.threads) or check_fits(spec, 0, memory_limit)
    if reason:
        for pos, case in enumerate(group.cases):
            rows[case.algorithm].update(status="skipped", reason=reason)
            finish(pos, case, [])
        result.rows = [rows[c.algorithm] for c in group.cases]
        return result

    mon.stage(-1, "creating the inputs")
    x_master, w_master = spec.random_inputs(seed)
    ref: np.ndarray | None = None
    live: list[_Live] = []
    with limit_threads(group.threads):
        pools = thread_report()
        for pos, case in enumerate(group.cases):
            row = rows[case.algorithm]
            row.update(numba_threads=pools["numba_threads"], blas_threads=pools["blas_threads"],
                       fft_workers=pools["fft_workers"])
            note(case, False)
            stage = "supports()"
            mon.stage(pos, stage)
            try:
                algo = get_algorithm(case.algorithm)
                why = algo.supports(spec)
                if why:
                    row.update(status="skipped", reason=str(why))
                    finish(pos, case, [])
                    continue
                stage = "workspace_bytes()"
                mon.stage(pos, stage)
                row["workspace_bytes"] = int(algo.workspace_bytes(spec))
                too_big = check_fits(spec, row["workspace_bytes"], memory_limit)
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
                stage = "the warm-up call"
                mon.stage(pos, stage)
                t0 = time.perf_counter()
                y = call(x)
                row["compile_s"] = time.perf_counter() - t0
                if ref is None:
                    stage = "the float64 reference"
                    mon.stage(pos, stage)
                    ref = reference(spec, x_master, w_master)
                    floor = error_floor(x_master, w_master)
                status, why, err = _check_output(y, spec, ref, floor, tol)
                if status == "ok" and not np.array_equal(x, x_master):
                    status, why = "failed", "the call modified its input array"
                    x[...] = x_master
                row.update(status=status, reason=why, max_rel_err=err)
                del y
                stage = "the warm-up call"
                mon.stage(pos, stage)
                for _ in range(timing.warmup - 1):
                    call(x)
                stage = "the memory measurement"
                mon.stage(pos, stage)
                row.update(measure_memory(algo, spec, w_master.copy(), x))
                stage = "the calibration call"
                mon.stage(pos, stage)
                t0 = time.perf_counter()
                call(x)
                loops = loops_for(time.perf_counter() - t0, timing.min_sample_time_s)
            except (Exception, SystemExit) as exc:  # any failure of the algorithm is a row, not a crash
                row.update(status="error", reason=_raised(stage, exc))
                finish(pos, case, [])
                continue
            row["loops"] = loops
            live.append(_Live(pos, case, row, call, x, Sampler(timing, loops)))

        mon.sampling(len(live))
        _sample_interleaved(live, result, finish, mon)

    _finish_rows([rows[c.algorithm] for c in group.cases], spec.flops, baseline)
    result.rows = [rows[c.algorithm] for c in group.cases]
    return result


def _sample_interleaved(
    live: list[_Live], result: GroupResult, finish: Callable[[int, Case, list[Row]], None], mon: Monitor
) -> None:
    """Round by round, one sample of every unfinished case, in a rotating order."""
    active = list(live)
    rnd = 0
    seq = 0
    # the cyclic GC is off while sampling, so a collection does not land in one
    # algorithm's sample; calls free their arrays by reference counting anyway
    gc.collect(0)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while active:
            shift = rnd % len(active)
            for item in active[shift:] + active[:shift]:
                call, x, loops = item.call, item.x, item.sampler.loops
                n = len(item.samples)
                mon.sample(item.pos, n)
                try:
                    t0 = time.perf_counter()
                    for _ in range(loops):
                        call(x)
                    elapsed = time.perf_counter() - t0
                except (Exception, SystemExit) as exc:
                    item.row.update(status="error", reason=_raised(f"sample {n}", exc))
                    continue
                per_call = item.sampler.add(elapsed)
                c = item.case
                sample = {
                    "case_index": c.index, "case_id": c.case_id, "layer": c.layer.name,
                    "algorithm": c.algorithm, "layout": c.spec.layout, "dtype": c.spec.dtype,
                    "threads": c.threads, "round": rnd, "sample": n,
                    "loops": loops, "time_s": per_call, "seq": seq,
                }
                seq += 1
                item.samples.append(sample)
                result.samples.append(sample)
            finished = [i for i in active if i.row["status"] == "error" or i.sampler.done]
            for item in finished:
                item.row.update(summarize(item.sampler.samples, item.sampler.settings.confidence))
                finish(item.pos, item.case, item.samples)
            active = [i for i in active if i not in finished]
            rnd += 1
    finally:
        if gc_was_enabled:
            gc.enable()


def _rate(row: Row, flops: int) -> None:
    med = row.get("time_median_s")
    if med is not None and not math.isnan(med) and med > 0:
        row["gflops"] = flops / med / 1e9


def _finish_rows(rows: list[Row], flops: int, baseline: str | None) -> None:
    """GFLOP/s of every row and, where the baseline is ok, speedups (rows of one group)."""
    for row in rows:
        _rate(row, flops)
    base = next((r for r in rows if baseline and r["algorithm"] == baseline), None)
    base_med = base.get("time_median_s") if base and base.get("status") == "ok" else None
    for row in rows:
        med = row.get("time_median_s")
        if base_med and row["status"] == "ok" and med and not math.isnan(med):
            row["speedup_vs_baseline"] = base_med / med


finish_rows = _finish_rows


def iter_results(
    plan: Plan,
    progress: Progress | None = None,
    *,
    isolation: bool = True,
    case_timeout: float = DEFAULT_CASE_TIMEOUT,
    memory_limit: int | None = None,
    pool: Any = None,
) -> Iterator[GroupResult]:
    """Measure the plan group by group, yielding each group's rows as it finishes.

    ``isolation=True`` measures in a worker process (:mod:`convbench.sweep.isolation`):
    a crash or a hang of one case becomes its ``crashed`` / ``timeout`` row.
    ``isolation=False`` measures in this process (plugins registered only
    here, e.g. classes defined in a test, need it; a crash ends the run).
    """
    seed, baseline = plan.config.seed, plan.config.baseline
    if not isolation:
        keep_freed_memory()
        for group in plan.groups:
            yield measure_group(group, plan.timing, seed, baseline, progress, memory_limit=memory_limit)
        return
    if pool is not None:  # a worker the caller started (and will stop)
        for group in plan.groups:
            yield pool.measure(group, plan.timing, seed, baseline, progress)
        return
    from .isolation import WorkerPool

    with WorkerPool(plan_plugins(plan), memory_limit=memory_limit, case_timeout=case_timeout) as own:
        own.check_algorithms(plan.algorithms)
        for group in plan.groups:
            yield own.measure(group, plan.timing, seed, baseline, progress)


def plan_plugins(plan: Plan) -> list[str]:
    """Plugin targets a worker must load to see what this process sees: the
    config's and --plugin ones first, then anything else loaded here."""
    from .. import registry
    from ..config.consent import require_loaded

    named = list(plan.config_as_run()["plugins"])
    require_loaded(named, plan.config.path)  # a worker loads only what was loaded here, with consent
    others = sorted(t for t in registry.loaded_plugins() if t not in named)
    return list(dict.fromkeys([*named, *others]))


# -- a whole run into a results folder --------------------------------------------


@dataclass
class RunOutcome:
    out_dir: Path
    rows: list[Row]
    env: dict[str, Any]


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run`: every finished case is on disk in ``out_dir``."""

    def __init__(self, out_dir: Path, cases_written: int, cases_total: int):
        super().__init__(f"interrupted: {cases_written} cases written to {out_dir}")
        self.out_dir, self.cases_written, self.cases_total = out_dir, cases_written, cases_total


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


#: How inputs and weights are made (recorded in env.json): the same config and seed give the same inputs.
RNG = "numpy.random.default_rng(seed) per layer variant: x then weights (OIHW), uniform [-1, 1), in the case's dtype"


def without_cases(plan: Plan, done: set[str]) -> Plan:
    """``plan`` without the groups whose every case is in ``done`` (case ids)."""
    groups = [g for g in plan.groups if not all(c.case_id in done for c in g.cases)]
    return replace(plan, groups=groups)


def _whole_groups(plan: Plan) -> Callable[[set[str]], set[str]]:
    """For resuming: keep only the cases of groups that are entirely present
    (a group is written at once; a torn write leaves part of one)."""
    def keep(done: set[str]) -> set[str]:
        kept = set(done)
        for g in plan.groups:
            ids = {c.case_id for c in g.cases}
            if ids & done and not ids <= done:
                kept -= ids
        return kept
    return keep


def run(
    plan: Plan,
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
    calibration: bool = True,
    argv: list[str] | None = None,
    *,
    isolation: bool = True,
    case_timeout: float = DEFAULT_CASE_TIMEOUT,
    memory_limit: int | None = None,
    resume: bool = False,
) -> RunOutcome:
    """Measure ``plan`` into a new results folder (refusing a non-empty one).

    ``resume=True``: ``out_dir`` is an interrupted results folder of the same
    config; only its missing cases are measured and appended. Ctrl-C raises
    :class:`RunInterrupted` after the finished cases are on disk. See
    :func:`iter_results` for ``isolation``, ``case_timeout`` (seconds without
    progress) and ``memory_limit`` (bytes a case may hold).
    """
    import contextlib

    from ..config.consent import require_loaded
    from ..machine import metadata
    from ..results import (
        FolderLock, ResultsError, ResultsWriter, check_new_dir, default_out_dir, open_resume, read_env,
    )

    if not case_timeout > 0:
        raise ValueError(f"--case-timeout must be a positive number of seconds, got {case_timeout}")
    if resume and out_dir is None:
        raise ResultsError("resuming needs the results folder to resume")
    require_loaded(plan.config_as_run()["plugins"], plan.config.path)
    out = Path(out_dir) if out_dir is not None else default_out_dir(plan.config.name)
    shard = {"index": plan.shard[0], "count": plan.shard[1]} if plan.shard else None
    rows: list[Row] = []
    todo = plan
    state = None
    with contextlib.ExitStack() as stack:
        lock = None
        if resume:  # locked before reading what is done: a second writer would measure the same cases
            read_env(out)  # a results folder at all, before a lock file is put in it
            lock = stack.enter_context(FolderLock(out))
            state = open_resume(out, plan.config_as_run(), shard, _whole_groups(plan))
            todo = without_cases(plan, state.done)
            rows = state.summary.to_dict("records")
        else:
            check_new_dir(out)
        pool = None
        if isolation and todo.groups:
            from .isolation import WorkerPool, check_loadable

            check_loadable(plan.algorithms)

            pool = stack.enter_context(
                WorkerPool(plan_plugins(plan), memory_limit=memory_limit, case_timeout=case_timeout))
            pool.check_algorithms(plan.algorithms)
        writer = ResultsWriter(out, resume=resume, lock=lock)  # a new folder: the writer locks it
        stack.callback(writer.close)
        settings = {
            "isolation": isolation, "case_timeout_s": case_timeout if isolation else None,
            "memory_limit_bytes": memory_limit, "rng": RNG,
        }
        if state is not None:
            env = dict(state.env)
            env.pop("schema_version", None)
            env.setdefault("resumes", []).append({
                "time": _now(), "argv": argv if argv is not None else sys.argv,
                "cases_before": len(state.done), "cases_to_measure": todo.n_cases,
                "host": metadata.collect_system().get("hostname"), **settings,
            })
            env.update(finished=False, end_time=None, interrupted=False)
        else:
            env = {
                "config_name": plan.config.name,
                "config_path": plan.config.path,
                "argv": argv if argv is not None else sys.argv,
                "seed": plan.config.seed,
                **settings,
                "quick": plan.quick,
                "shard": shard,
                "algorithms": plan.algorithms,
                "baseline": plan.config.baseline,
                "threads_requested": plan.threads,
                "timing": plan.timing.to_dict(),
                "n_cases": plan.n_cases,
                "start_time": _now(),
                "end_time": None,
                "finished": False,
            }
        try:
            if state is None:
                header = f"# config as run ({plan.config.path}), every layer explicit; re-runnable\n"
                writer.write_config(dump_config(plan.config_as_run(), header))
                env.update(metadata.collect_all(calibration=calibration, threads=plan.threads))
            if pool is not None:
                env["worker"] = {"rlimit_data_bytes": pool.info.get("rlimit_data")}
            writer.write_env(env)
            for result in iter_results(todo, progress, isolation=isolation, case_timeout=case_timeout,
                                       memory_limit=memory_limit, pool=pool):
                writer.append(result.rows, result.samples)
                rows.extend(result.rows)
            env["finished"] = True
        except KeyboardInterrupt:
            env["interrupted"] = True
            raise RunInterrupted(out, len(rows), plan.n_cases) from None
        finally:
            env["end_time"] = _now()
            env["cases_written"] = len(rows)
            if pool is not None:
                env.setdefault("worker", {})["starts"] = pool.starts
            writer.write_env(env)
    return RunOutcome(writer.dir, rows, env)


__all__ = [
    "Case", "ConfigError", "DEFAULT_CASE_TIMEOUT", "Group", "GroupResult", "Monitor", "Plan", "RunInterrupted",
    "RunOutcome", "describe_layers", "iter_results", "measure_group", "measure_memory", "parse_shard", "plan",
    "run", "without_cases",
]


def describe_layers(plan: Plan) -> list[Row]:
    """The expanded layer table: one row per layer variant, FLOPs and each
    algorithm's analytic workspace (``None`` where it does not support it)."""
    rows = []
    for layer in plan.config.layers:
        for spec in layer.variants():
            row: Row = {
                "layer": layer.name, "layer_class": layer.layer_class, "count": layer.count,
                "description": spec.describe(), "layout": spec.layout, "dtype": spec.dtype,
                "flops": spec.flops, "workspace_bytes": {},
            }
            for name in plan.algorithms:
                algo = get_algorithm(name)
                try:
                    why = algo.supports(spec)
                    row["workspace_bytes"][name] = None if why else int(algo.workspace_bytes(spec))
                except Exception:
                    row["workspace_bytes"][name] = None
            rows.append(row)
    return rows
