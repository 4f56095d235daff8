"""A run: a plan measured group by group into a results folder, resumable.

:func:`prepare_run` turns what a user asks for (a config, overrides, a new
or an interrupted results folder) into a :class:`RunSetup`; :func:`run`
measures it, in an isolated worker (:mod:`.isolation`, started here and
nowhere else) or in this process, and hands each group's rows to the
:class:`~convbench.results.ResultsWriter` as soon as the group is done.
"""

from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import registry
from ..config.consent import load_config_plugins, require_loaded
from ..config.load import dump_config, load_config
from ..machine import metadata
from ..machine.measuring import prepare_measuring_process
from ..machine.threads import allowed_cores
from ..results.lock import FolderLock
from ..results.io import ResultsError, ResultsWriter, check_new_dir, default_out_dir, read_env
from ..results.resume import open_resume
from ..results.schema import STATUSES, SUMMARY_COLUMNS, repetition_row, summary_row
from ..timing import repetition_schedule
from .isolation import DEFAULT_CASE_TIMEOUT, WorkerPool, check_case_timeout, check_loadable
from ..machine.cache import describe_cold_cache
from ..machine.contention import wait_quiet
from .measure import REF_FLOPS, GroupResult, Monitor, Row, measure_group
from .plan import Group, Plan, plan as make_plan, whole_groups, whole_repetitions, without_cases
from .repeats import DRIFT_LIMIT, combine, repetition_drift
from .uninterrupted import uninterrupted

#: Extra attempts at a group's repetition whose reference kernel moved beyond
#: :data:`~.repeats.DRIFT_LIMIT` while it was measured; the steadiest is kept.
MAX_REMEASURE = 1


#: How repetitions are run (recorded in env.json).
REPETITIONS = (
    "each group measured timing.repeat times: every pass measures every group once, in a seeded shuffled "
    "order, a new worker process per pass; one-thread cases pinned to core (repetition + group index) mod "
    f"cores; a repetition whose reference sgemm drifted > {DRIFT_LIMIT:.0%} is measured again (up to "
    f"{MAX_REMEASURE} more times, the steadiest kept, `unstable` if still beyond)"
)

#: How inputs and weights are made (recorded in env.json): the same config and seed give the same inputs.
RNG = "numpy.random.default_rng(seed) per layer variant: x then weights (OIHW), uniform [-1, 1), in the case's dtype"


@dataclass
class RunSetup:
    """A planned run and the folder it writes: a new one, or (``resume``) an interrupted one."""

    plan: Plan
    out_dir: Path
    resume: bool = False


@dataclass
class RunOutcome:
    out_dir: Path
    rows: list[Row]
    env: dict[str, Any]

    @property
    def status_counts(self) -> dict[str, int]:
        """How many rows have each status, in :data:`~convbench.results.schema.STATUSES` order."""
        return {s: sum(r["status"] == s for r in self.rows) for s in STATUSES}

    @property
    def cases_measured(self) -> int:
        """Cases measured by this call (a resumed run counts only the missing ones)."""
        resumes = self.env.get("resumes") or []
        return resumes[-1].get("cases_to_measure", 0) if resumes else len(self.rows)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run`: every finished case is on disk in ``out_dir``."""

    def __init__(self, out_dir: Path, cases_written: int, cases_total: int):
        super().__init__(f"interrupted: {cases_written} cases written to {out_dir}")
        self.out_dir, self.cases_written, self.cases_total = out_dir, cases_written, cases_total


def prepare_run(
    config: str | Path | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    plugins: list[str] | None = None,
    allow_config_plugins: bool = False,
    algorithms: list[str] | None = None,
    threads: list[int] | None = None,
    layers: list[str] | None = None,
    quick: bool = False,
    shard: tuple[int, int] | None = None,
    repeat: int | None = None,
    cache: list[str] | None = None,
    phases: bool = True,
    dtypes: list[str] | None = None,
) -> RunSetup:
    """Load plugins and the config, plan the sweep, and choose its results folder.

    ``out`` is a new folder (default ``results/<config>/<timestamp>/``).
    ``resume`` is an interrupted results folder instead: its own
    ``config.yaml`` and shard are the defaults, and :func:`run` later refuses
    it if the config as run now differs. Plugin files are taken relative to
    the current folder. Config ``plugins:`` need consent: ``allow_config_plugins`` or the same in ``plugins``.
    """
    targets = [registry.plugin_target(p, Path.cwd()) for p in plugins or []]
    for target in targets:
        registry.load_plugin(target)
    if resume is not None:
        if out is not None and Path(out).resolve() != Path(resume).resolve():
            raise ResultsError(f"give either a new results folder or one to resume, not both: {out} and {resume}")
        try:
            env = read_env(resume)
        except ResultsError as exc:
            raise ResultsError(f"cannot resume: {exc}") from None
        config = config if config is not None else Path(resume) / "config.yaml"
        if shard is None and env.get("shard"):
            shard = (env["shard"]["index"], env["shard"]["count"])
    the_config = load_config(config)
    load_config_plugins(the_config, allow=allow_config_plugins, given=targets)
    the_plan = make_plan(the_config, algorithms=algorithms, threads=threads, layers=layers, quick=quick,
                         shard=shard, plugins=targets, repeat=repeat, cache=cache, phases=phases,
                         dtypes=dtypes)
    if resume is not None:
        return RunSetup(the_plan, Path(resume), resume=True)
    check_new_dir(out)
    return RunSetup(the_plan, Path(out) if out is not None else default_out_dir(the_plan.config.name))


@dataclass
class Measured:
    """One step of a run: a repetition of a group (its ``repetitions.csv`` rows
    and samples) and, after the group's last repetition, its summary rows."""

    group: Group
    repetition: int
    repetition_rows: list[Row]
    samples: list[Row]
    rows: list[Row]
    phases: list[Row] = field(default_factory=list)  # phases.csv rows (repetition 0)


def _pin(group: Group, repetition: int, cores: list[int]) -> int | None:
    """One-thread cases run pinned, on a core that turns with the repetition, so
    a case meets every core and a sweep meets them in the same way every time."""
    return cores[(repetition + group.index) % len(cores)] if group.threads == 1 and cores else None


def _steady(measure: Callable[[Monitor | None], GroupResult], monitor: Monitor | None) -> tuple[GroupResult, int, float]:
    """Measure until the reference kernel held still and no case was contended (up to
    MAX_REMEASURE more times); the steadiest attempt, how many extra attempts it took,
    and its drift."""
    best, best_drift = None, math.nan
    for attempt in range(1 + MAX_REMEASURE):
        result = measure(monitor if attempt == 0 else None)  # the progress counts a case once
        d = repetition_drift(result.samples)
        contended = any(bool(r.get("contended")) for r in result.rows)
        if best is None or abs(d) < abs(best_drift):
            best, best_drift = result, d
        if not abs(d) > DRIFT_LIMIT and not contended:
            break
    assert best is not None
    return best, attempt, best_drift


def _slim(sample: Row) -> Row:
    return {k: sample[k] for k in ("case_id", "repetition", "round", "time_s", "ref_time_s")}


def iter_results(
    plan: Plan, monitor: Monitor | None = None, *, memory_limit: int | None = None, pool: WorkerPool | None = None,
    earlier: dict[int, dict[int, tuple[list[Row], list[Row]]]] | None = None,
) -> Iterator[Measured]:
    """Measure every group ``plan.timing.repeat`` times, yielding each repetition as it ends.

    The repetitions follow :func:`~convbench.timing.repetition_schedule`: each
    pass measures every group once, in a shuffled order, and with a ``pool``
    (:class:`~.isolation.WorkerPool`) each pass runs in a fresh worker
    process, where a crash or a hang of one case becomes its ``crashed`` /
    ``timeout`` row. Without one the groups are measured in this process
    (algorithms registered only here, e.g. classes defined in a test, need
    it; a crash ends the run). ``earlier``: repetitions already on disk
    (group index -> repetition -> (rows, samples)), not measured again.
    """
    seed, baseline, repeat = plan.config.seed, plan.config.baseline, plan.timing.repeat
    have = {gi: dict(reps) for gi, reps in (earlier or {}).items()}
    cores = allowed_cores()
    if pool is None:
        prepare_measuring_process()
    finished: set[int] = set()

    def final(group: Group, got: dict[int, tuple[list[Row], list[Row]]]) -> list[Row]:
        rows = [r for k in sorted(got) for r in got[k][0]]
        samples = [x for k in sorted(got) for x in got[k][1]]
        combined = combine(rows, samples, baseline, REF_FLOPS, plan.timing.confidence, seed=seed + group.index)
        del have[group.index]
        finished.add(group.index)
        return [summary_row(**{k: v for k, v in r.items() if k in SUMMARY_COLUMNS}) for r in combined]

    for group in plan.groups:  # every repetition on disk, the summary rows not (killed in between)
        if len(have.get(group.index, {})) >= repeat:
            yield Measured(group, repeat - 1, [], [], final(group, have[group.index]))
    current = None
    for rep, pos in repetition_schedule(len(plan.groups), repeat, seed):
        group = plan.groups[pos]
        if group.index in finished:
            continue
        got = have.setdefault(group.index, {})
        if rep in got:
            continue
        if pool is not None and current is not None and rep != current:
            pool.close()  # a new repetition in a new process: other memory, other JIT state
        current = rep
        pin = _pin(group, rep, cores)
        if plan.wait_quiet_s > 0:  # let other processes leave the cores first (--wait-quiet)
            wait_quiet(plan.wait_quiet_s)

        def measure(mon: Monitor | None, group: Group = group, rep: int = rep, pin: int | None = pin) -> GroupResult:
            if pool is None:
                return measure_group(group, plan.timing, seed, baseline, memory_limit=memory_limit, monitor=mon,
                                     repetition=rep, pin=pin, phases=plan.phases)
            return pool.measure(group, plan.timing, seed, baseline, mon, repetition=rep, pin=pin,
                                phases=plan.phases)

        result, extra, d = _steady(measure, monitor)
        unstable = abs(d) > DRIFT_LIMIT
        rep_rows = [repetition_row(rep, pin, {**row, "ref_drift": d, "unstable": unstable, "remeasured": extra})
                    for row in result.rows]
        got[rep] = (rep_rows, [_slim(s) for s in result.samples])
        yield Measured(group, rep, rep_rows, result.samples, final(group, got) if len(got) == repeat else [],
                       result.phases)


def earlier_repetitions(plan: Plan, state: Any) -> dict[int, dict[int, tuple[list[Row], list[Row]]]]:
    """The repetitions an interrupted folder holds for groups not yet done (see :func:`iter_results`)."""
    if state is None or state.repetitions is None or not len(state.repetitions):
        return {}
    group_of = {c.case_id: g.index for g in plan.groups for c in g.cases}
    samples: dict[tuple[str, int], list[Row]] = {}
    for s in state.samples.to_dict("records"):
        samples.setdefault((str(s["case_id"]), int(s["repetition"])), []).append(_slim(s))
    out: dict[int, dict[int, tuple[list[Row], list[Row]]]] = {}
    for row in state.repetitions.to_dict("records"):
        cid, rep = str(row["case_id"]), int(row["repetition"])
        if cid not in group_of:
            continue
        rows, smp = out.setdefault(group_of[cid], {}).setdefault(rep, ([], []))
        rows.append(row)
        smp.extend(samples.get((cid, rep), []))
    return out


def plan_plugins(plan: Plan) -> list[str]:
    """Plugin targets a worker must load to see what this process sees: the
    config's and the run's own first, then anything else loaded here."""
    named = list(plan.config_as_run()["plugins"])
    require_loaded(named, plan.config.path)  # a worker loads only what was loaded here, with consent
    others = sorted(t for t in registry.loaded_plugins() if t not in named)
    return list(dict.fromkeys([*named, *others]))


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def _new_env(plan: Plan, argv: list[str], settings: dict[str, Any], shard: dict | None) -> dict[str, Any]:
    return {
        "config_name": plan.config.name, "config_path": plan.config.path, "argv": argv,
        "seed": plan.config.seed, **settings, "quick": plan.quick, "shard": shard,
        "algorithms": plan.algorithms, "baseline": plan.config.baseline, "threads_requested": plan.threads,
        # which are production libraries (analysis sets convbench's best against theirs)
        "peers": [n for n in plan.algorithms if getattr(registry.get_algorithm(n), "peer", False)],
        "timing": plan.timing.to_dict(), "n_cases": plan.n_cases, "start_time": _now(), "end_time": None,
        "finished": False, "cache_states": list(plan.cache), "phases": plan.phases,
        # how a cold case was made cold, and the cache sizes that was sized from
        "cold_cache": describe_cold_cache() if "cold" in plan.cache else None,
    }


def _resumed_env(env: dict[str, Any], argv: list[str], settings: dict[str, Any], before: int, todo: int) -> dict:
    env = dict(env)
    env.pop("schema_version", None)
    env.setdefault("resumes", []).append({
        "time": _now(), "argv": argv, "cases_before": before, "cases_to_measure": todo,
        "host": metadata.collect_system().get("hostname"), **settings,
    })
    env.update(finished=False, end_time=None, interrupted=False)
    return env


def run(
    plan: Plan | RunSetup,
    out_dir: str | Path | None = None,
    *,
    monitor: Monitor | None = None,
    calibration: bool = True,
    argv: list[str] | None = None,
    isolation: bool = True,
    case_timeout: float = DEFAULT_CASE_TIMEOUT,
    memory_limit: int | None = None,
    resume: bool = False,
) -> RunOutcome:
    """Measure ``plan`` into a new results folder (refusing a non-empty one).

    ``plan`` may be a :class:`RunSetup` from :func:`prepare_run`, which
    names the folder and whether to resume. ``resume=True``: ``out_dir`` is
    an interrupted results folder of the same config; only its missing cases
    are measured and appended. Ctrl-C raises :class:`RunInterrupted` after
    the finished cases are on disk. ``isolation`` measures in a worker
    process (see :func:`iter_results`); ``case_timeout`` is the seconds a
    case may go without progress there, ``memory_limit`` the bytes a case
    may hold.
    """
    if isinstance(plan, RunSetup):
        plan, out_dir, resume = plan.plan, plan.out_dir, plan.resume
    case_timeout = check_case_timeout(case_timeout)
    if resume and out_dir is None:
        raise ResultsError("resuming needs the results folder to resume")
    out = Path(out_dir) if out_dir is not None else default_out_dir(plan.config.name)
    argv = argv if argv is not None else sys.argv
    shard = {"index": plan.shard[0], "count": plan.shard[1]} if plan.shard else None
    settings = {"isolation": isolation, "case_timeout_s": case_timeout if isolation else None,
                "memory_limit_bytes": memory_limit, "rng": RNG, "repetitions": REPETITIONS,
                "fresh_process_per_repetition": isolation}
    rows: list[Row] = []
    todo = plan
    state = None
    with contextlib.ExitStack() as stack:
        if resume:  # locked before reading what is done: a second writer would measure the same cases
            read_env(out)  # a results folder at all, before a lock file is put in it
            stack.enter_context(FolderLock(out))
            state = open_resume(out, plan.config_as_run(), shard, whole_groups(plan), whole_repetitions(plan))
            todo = without_cases(plan, state.done)
            rows = state.summary.to_dict("records")
        else:
            check_new_dir(out)
        pool = None
        if isolation and todo.groups:
            check_loadable(plan.algorithms)
            pool = stack.enter_context(
                WorkerPool(plan_plugins(plan), memory_limit=memory_limit, case_timeout=case_timeout))
            pool.check_algorithms(plan.algorithms)
        if not resume:  # a new folder: locked as it is made, so a second run into it fails at once
            stack.enter_context(FolderLock(out))
        writer = ResultsWriter(out, resume=resume)
        stack.callback(writer.close)
        if state is not None:
            env = _resumed_env(state.env, argv, settings, len(state.done), todo.n_cases)
        else:
            env = _new_env(plan, argv, settings, shard)
        try:
            if state is None:
                header = f"# config as run ({plan.config.path}), every layer explicit; re-runnable\n"
                writer.write_config(dump_config(plan.config_as_run(), header))
                env.update(metadata.collect_all(calibration=calibration, threads=plan.threads))
            if monitor is not None:
                monitor.machine(env)
            if pool is not None:
                env["worker"] = {"rlimit_data_bytes": pool.info.get("rlimit_data")}
            writer.write_env(env)
            for step in iter_results(todo, monitor, memory_limit=memory_limit, pool=pool,
                                     earlier=earlier_repetitions(todo, state)):
                with uninterrupted():  # Ctrl-C after the step's rows are written and counted
                    writer.append_repetition(step.repetition_rows, step.samples)
                    writer.append_phases(step.phases)
                    if step.rows:
                        writer.append(step.rows)
                        rows.extend(step.rows)
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
