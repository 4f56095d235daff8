"""The driver every executor shares: shard a plan, hand the shards out, merge.

An executor only decides *where* a piece of a plan runs. A piece is a shard
of the sweep (``I/N``, the same partition as ``convbench run --shard I/N``:
whole groups, so every speedup has its baseline beside it), and each task
simply calls the library's :func:`convbench.sweep.session.run` for it, so it
measures exactly as a local run does (isolated worker, interleaving,
repetitions, whatever the sweep session does), on whatever node it lands on.

A distributed run's folder::

    OUT/
      cluster.json            what was submitted where, and how each task ended
      config.yaml             the config as run (written first: --resume needs it)
      shards/001-of-004/      shard 1/4: a complete results folder with its own
                              env.json (that node is its own machine)
      shards/001-of-004.task.json   the host and pid of the task measuring it
      shards/003-of-004-r2/   a later attempt of shard 3 on *another* machine:
                              only the cases the first attempt did not finish
      summary.csv samples.csv env.json   the merge, with a ``machine`` column

Nothing lives only in the driver: each shard is written row by row by its
task, so a driver that dies loses nothing (``convbench merge OUT/shards/*/``
or ``convbench run --resume OUT`` joins them later). A task that fails or is
lost leaves its unmeasured cases as ``missing`` rows of the merge, with the
reason; ``--resume`` submits only the shards with missing cases, and a shard
resumed on the machine that started it continues in place, on another
machine in a new attempt folder (rows of two machines never share a folder,
so the ``machine`` column stays true).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from ..sweep.plan import Plan

#: The file that marks a folder as a distributed run (and records it).
CLUSTER_FILE = "cluster.json"
SHARDS = "shards"
#: Seconds between two looks at the tasks and the shard folders.
POLL_S = 0.5


class ExecutorError(Exception):
    """An executor cannot start or cannot run this plan; the message says how to fix it."""


class MissingExtra(ExecutorError):
    """The executor's optional dependency is not installed."""

    def __init__(self, executor: str, extra: str, module: str):
        super().__init__(
            f"--executor {executor} needs the '{module}' package, which is not installed; "
            f'install the extra with: pip install -e ".[{extra}]"  (or pip install "convbench[{extra}]")'
        )


# -- tasks ----------------------------------------------------------------------------


@dataclass
class Task:
    """One shard of a plan, as handed to a worker (pickled; plain data)."""

    index: int  # 1-based shard index
    count: int  # number of shards
    plan: Plan  # the shard's plan (its groups only)
    shards_dir: str  # OUT/shards, absolute: a node's working directory may differ
    run_options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of sweep.session.run
    argv: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """``003-of-010``: the shard folder's name (sorts in shard order)."""
        width = max(3, len(str(self.count)))
        return f"{self.index:0{width}d}-of-{self.count:0{width}d}"


def shard_plan(plan: Plan, index: int, count: int) -> Plan:
    """Shard ``index``/``count`` of ``plan``: the groups :func:`~convbench.sweep.plan.plan`
    keeps for ``--shard I/N`` (every N-th group, by the group's index in the whole sweep).

    ``dataclasses.replace`` keeps every other field of the plan (timing,
    plugins, anything a later version adds), so a shard measures as the whole would.
    """
    groups = [g for g in plan.groups if g.index % count == index - 1]
    return replace(plan, groups=groups, shard=(index, count))


def attempts(shards_dir: Path, key: str) -> list[Path]:
    """The attempt folders of a shard, first one first (``KEY``, ``KEY-r2``, ...)."""
    found = [p for p in shards_dir.glob(f"{key}*") if p.is_dir()
             and (p.name == key or (p.name.startswith(f"{key}-r") and p.name[len(key) + 2:].isdigit()))]
    return sorted(found, key=lambda p: 1 if p.name == key else int(p.name[len(key) + 2:]))


def cases_on_disk(folder: Path) -> set[str]:
    """case_id of every summary row in ``folder`` (a torn last line does not count)."""
    path = folder / "summary.csv"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    if text and not text.endswith("\n"):  # killed in the middle of a write
        text = text[: text.rfind("\n") + 1]
    return {r["case_id"] for r in csv.DictReader(io.StringIO(text)) if r.get("case_id")}


def _complete_groups(plan: Plan) -> Callable[[set[str]], set[str]]:
    """For repairing an attempt: keep only the cases of groups written whole
    (a group is appended at once; a torn write leaves part of one)."""
    def keep(done: set[str]) -> set[str]:
        kept = set(done)
        for g in plan.groups:
            ids = {c.case_id for c in g.cases}
            if ids & done and not ids <= done:
                kept -= ids
        return kept
    return keep


def _host() -> str:
    return socket.gethostname()


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def run_task(task: Task) -> dict[str, Any]:
    """Measure one shard on this node; what runs on a Dask worker or in a SLURM job.

    Continues the shard's last attempt in place when this is the machine that
    started it; otherwise repairs the earlier attempts (dropping a partly
    written group) and measures what they lack into a new attempt folder.
    Returns a small report; any exception is the task's failure reason.
    """
    from ..registry import load_plugin
    from ..results import read_env
    from ..sweep.session import run, without_cases

    for target in task.plan.config_as_run().get("plugins") or []:
        load_plugin(target)  # as the driver did: the task's own checks see the same algorithms
    shards = Path(task.shards_dir)
    shards.mkdir(parents=True, exist_ok=True)
    plan, host = task.plan, _host()
    done: dict[Path, set[str]] = {}
    for folder in attempts(shards, task.key):
        if not (folder / "env.json").is_file() and not cases_on_disk(folder):
            # killed before its metadata was written, so before any row: nothing to keep
            shutil.rmtree(folder)
            continue
        # whole groups only: a group torn by a kill is measured again whole (in place, the
        # session's resume repairs the folder; elsewhere, the new attempt measures it)
        done[folder] = _complete_groups(plan)(cases_on_disk(folder))
    last = list(done)[-1] if done else None
    same_machine = last is not None and (read_env(last).get("system") or {}).get("hostname") == host
    if same_machine:
        _check_not_running(shards / f"{last.name}.task.json", host)
        folder, resume = last, True
        others = set().union(*(d for f, d in done.items() if f != last))
        todo = without_cases(plan, others)
    else:
        n = 1
        while (shards / (task.key if n == 1 else f"{task.key}-r{n}")).exists():
            n += 1
        folder, resume = shards / (task.key if n == 1 else f"{task.key}-r{n}"), False
        todo = without_cases(plan, set().union(*done.values()) if done else set())
    _write_json(shards / f"{folder.name}.task.json",
                {"host": host, "pid": os.getpid(), "folder": folder.name, "started": _now(), "resume": resume})
    if not todo.groups and not resume:
        return {"key": task.key, "host": host, "folder": str(folder), "measured": 0}
    outcome = run(todo, folder, resume=resume, argv=task.argv, **task.run_options)
    return {"key": task.key, "host": host, "folder": str(outcome.out_dir), "measured": len(outcome.rows)}


def _check_not_running(info_path: Path, host: str) -> None:
    """Refuse to write a shard folder that a live task on this host is still writing
    (a resume submitted while the first driver's job runs on): two writers would tear it."""
    try:
        info = json.loads(info_path.read_text())
    except (OSError, json.JSONDecodeError):
        return
    pid = info.get("pid")
    if info.get("host") != host or not isinstance(pid, int) or pid == os.getpid():
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    except PermissionError:
        pass  # alive, another user's
    if Path(f"/proc/{pid}/cmdline").is_file() and b"python" not in Path(f"/proc/{pid}/cmdline").read_bytes():
        return  # the pid was reused by something else
    raise ExecutorError(f"shard {info.get('folder')} is still being measured by pid {pid} on {host}; "
                        "wait for it (or stop it), then resume")


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


# -- executors ---------------------------------------------------------------------------


@dataclass
class TaskState:
    """How a submitted task stands: ``pending`` (queued or running), ``done`` or ``failed``."""

    state: str
    reason: str = ""
    job_id: str = ""

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


class Executor(ABC):
    """Where tasks run. Subclasses submit, report states, and clean up; nothing else."""

    name: str = ""

    @abstractmethod
    def start(self, tasks: list[Task]) -> None:
        """Submit every task (or queue them, for executors that run one at a time)."""

    @abstractmethod
    def poll(self) -> dict[str, TaskState]:
        """The state of every started task, by :attr:`Task.key`; never blocks for long."""

    def check_previous(self, submission: Mapping[str, Any]) -> None:
        """Raise :class:`ExecutorError` if tasks of an earlier submission (whose driver
        died) may still be running, so a resume does not measure a shard twice at once."""

    def close(self) -> None:
        """Release what the executor started (a local cluster); running SLURM jobs stay."""

    def describe(self) -> dict[str, Any]:
        """What to record in cluster.json about where the tasks ran."""
        return {"executor": self.name}

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalExecutor(Executor):
    """Runs the tasks one after another in this process (each in its isolated worker).

    What ``--executor local`` does with a distributed run's folder (e.g. to
    finish on a workstation what a cluster left missing) and what the
    driver's own tests use: the shards' folders are those of any executor.
    """

    name = "local"

    def __init__(self) -> None:
        self._tasks: list[Task] = []
        self._states: dict[str, TaskState] = {}

    def start(self, tasks: list[Task]) -> None:
        self._tasks = list(tasks)
        self._states = {t.key: TaskState("pending") for t in tasks}

    def poll(self) -> dict[str, TaskState]:
        # one task per poll: the driver's progress shows between tasks
        for task in self._tasks:
            if not self._states[task.key].finished:
                try:
                    run_task(task)
                    self._states[task.key] = TaskState("done")
                except Exception as exc:  # the task's failure is its rows' reason, not the driver's end
                    self._states[task.key] = TaskState("failed", failure_reason(exc))
                break
        return dict(self._states)


def failure_reason(exc: BaseException) -> str:
    """One line: the exception's type and first line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# -- the driver ------------------------------------------------------------------------------


@dataclass
class Progress:
    """What the driver reports each poll."""

    cases_done: int
    cases_total: int
    states: dict[str, TaskState]

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "done": 0, "failed": 0}
        for s in self.states.values():
            out[s.state] = out.get(s.state, 0) + 1
        return out


@dataclass
class ClusterOutcome:
    """A finished distributed run: the merged folder and how each task ended."""

    out_dir: Path
    states: dict[str, TaskState]
    missing: int  # cases no task measured (``missing`` rows of the merge)
    submitted: int  # tasks submitted by this call (a resume submits only the unfinished ones)
    rows: list[dict[str, Any]]


class ClusterInterrupted(KeyboardInterrupt):
    """Ctrl-C while waiting: the shards keep what their tasks wrote."""

    def __init__(self, out_dir: Path):
        super().__init__(f"interrupted while waiting for the tasks of {out_dir}")
        self.out_dir = out_dir


def is_cluster_run(folder: str | Path) -> bool:
    """Whether ``folder`` was made by ``convbench run --executor dask|slurm``."""
    return (Path(folder) / CLUSTER_FILE).is_file()


def read_cluster(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CLUSTER_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ExecutorError(f"{path}: cannot read it ({exc}); is {folder} a distributed run's folder?") from None


def make_tasks(plan: Plan, out_dir: Path, count: int, run_options: Mapping[str, Any],
               argv: list[str]) -> list[Task]:
    """``count`` shard tasks of ``plan`` (empty shards dropped: fewer groups than tasks)."""
    shards_dir = str((out_dir / SHARDS).absolute())
    tasks = [Task(i, count, shard_plan(plan, i, count), shards_dir, dict(run_options), list(argv))
             for i in range(1, count + 1)]
    return [t for t in tasks if t.plan.groups]


def missing_cases(task: Task) -> list[Any]:
    """The cases of ``task`` that none of its attempt folders holds."""
    have: set[str] = set()
    for folder in attempts(Path(task.shards_dir), task.key):
        have |= cases_on_disk(folder)
    return [c for c in task.plan.cases if c.case_id not in have]


def execute(
    plan: Plan,
    out_dir: str | Path,
    executor: Executor,
    *,
    tasks: int | None = None,
    run_options: Mapping[str, Any] | None = None,
    resume: bool = False,
    argv: list[str] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    poll_s: float = POLL_S,
) -> ClusterOutcome:
    """Run ``plan`` as ``tasks`` shards on ``executor``, wait, and merge into ``out_dir``.

    ``tasks`` defaults to one per group (the most parallel). ``resume=True``:
    ``out_dir`` is an earlier distributed run of the same plan; only shards
    with missing cases are submitted (with the shard count it was made with).
    ``run_options`` are passed to every task's :func:`convbench.sweep.session.run`.
    """
    from ..config import dump_config
    from ..results import ResultsError, check_new_dir

    out = Path(out_dir)
    argv = list(argv if argv is not None else sys.argv)
    if plan.shard is not None:
        raise ExecutorError("--shard and --executor do not mix: the executor makes the shards itself (see --tasks)")
    if resume:
        record = read_cluster(out)
        if record.get("submissions"):
            executor.check_previous(record["submissions"][-1])
        count = int(record["tasks"])
        if tasks is not None and tasks != count:
            raise ExecutorError(f"{out} was made with --tasks {count}; resume it with the same number (or none)")
        stored = (out / "config.yaml").read_text() if (out / "config.yaml").is_file() else ""
        import yaml

        if yaml.safe_load(stored) != yaml.safe_load(dump_config(plan.config_as_run())):
            raise ResultsError(
                f"cannot resume {out}: it was made from a different config or options; resume with its own: "
                f"convbench run {out / 'config.yaml'} --resume {out} (and the same --quick, -a, -t, -l)"
            )
    else:
        n_groups = len(plan.groups)
        count = n_groups if tasks is None else tasks
        if count < 1:
            raise ExecutorError(f"--tasks must be >= 1, got {count}")
        count = min(count, n_groups)  # a shard without a group would be an empty task
        check_new_dir(out)
        out.mkdir(parents=True, exist_ok=True)
        header = f"# config as run ({plan.config.path}), every layer explicit; re-runnable\n"
        (out / "config.yaml").write_text(dump_config(plan.config_as_run(), header))
        record = {"tasks": count, "n_cases": plan.n_cases, "created": _now(), "submissions": []}
    all_tasks = make_tasks(plan, out, count, run_options or {}, argv)
    todo = [t for t in all_tasks if missing_cases(t)]
    submission: dict[str, Any] = {"time": _now(), "argv": argv, **executor.describe(),
                                  "tasks": [t.key for t in todo], "states": {}}
    record["submissions"].append(submission)
    _write_json(out / CLUSTER_FILE, record)

    states: dict[str, TaskState] = {}
    try:
        if todo:
            executor.start(todo)
        while True:
            before, states = states, executor.poll() if todo else {}
            if states != before:  # job ids and ends on disk as they happen: a dead driver leaves them
                submission["states"] = _states_json(states)
                _write_json(out / CLUSTER_FILE, record)
            if on_progress is not None:
                done = sum(len(cases_on_disk(f)) for t in all_tasks for f in attempts(Path(t.shards_dir), t.key))
                on_progress(Progress(done, plan.n_cases, states))
            if all(s.finished for s in states.values()):
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        raise ClusterInterrupted(out) from None
    finally:
        submission["states"] = _states_json(states)
        submission["ended"] = _now()
        _write_json(out / CLUSTER_FILE, record)
    rows, missing = assemble(out, plan, all_tasks, states, executor.describe())
    return ClusterOutcome(out, states, missing, len(todo), rows)


def _states_json(states: Mapping[str, TaskState]) -> dict[str, Any]:
    return {k: {"state": s.state, "reason": s.reason, "job_id": s.job_id} for k, s in states.items()}


def assemble(out: Path, plan: Plan, tasks: list[Task], states: Mapping[str, TaskState],
             where: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Merge every shard attempt into ``out`` and add a ``missing`` row per unmeasured case.

    The merge is built in a scratch folder and moved over the previous one
    file by file (it is derived from the shards, which are never touched).
    Returns the merged rows and the number of missing cases.
    """
    import pandas as pd

    from ..machine.identity import MACHINE_COLUMN
    from ..results import SAMPLE_COLUMNS, SCHEMA_VERSION, SUMMARY_COLUMNS, ResultsWriter, merge_results
    from ..results.io import read_csv
    from ..sweep.measure import base_row

    folders = [f for t in tasks for f in attempts(Path(t.shards_dir), t.key) if (f / "env.json").is_file()]
    scratch = out / ".merging"
    if scratch.exists():
        shutil.rmtree(scratch)
    if folders:
        merge_results(folders, scratch)
    else:  # no task got as far as writing its metadata: a merge of nothing but missing rows
        with ResultsWriter(scratch) as w:
            w.write_config((out / "config.yaml").read_text())
        pd.DataFrame(columns=[*SAMPLE_COLUMNS, MACHINE_COLUMN]).to_csv(scratch / "samples.csv", index=False)
        _write_json(scratch / "env.json", {"schema_version": SCHEMA_VERSION, "config_name": plan.config.name,
                                          "seed": plan.config.seed, "baseline": plan.config.baseline,
                                          "algorithms": plan.algorithms, "quick": plan.quick})
    summary = read_csv(scratch / "summary.csv", SUMMARY_COLUMNS)
    if MACHINE_COLUMN not in summary.columns:
        summary[MACHINE_COLUMN] = ""
    lost = []
    for t in tasks:
        state = states.get(t.key)
        for case in missing_cases(t):
            row = base_row(case, plan.config.seed, plan.config.baseline)
            row.update(status="missing", reason=_missing_reason(t, state), machine="")
            lost.append(row)
    if lost:
        summary = pd.concat([summary, pd.DataFrame(lost)], ignore_index=True)
        summary = summary.sort_values("case_index", kind="stable")
    summary[[*SUMMARY_COLUMNS, MACHINE_COLUMN]].to_csv(scratch / "summary.csv", index=False)
    env = json.loads((scratch / "env.json").read_text())
    env.update(executor=dict(where), tasks=len(tasks), n_cases=plan.n_cases, missing_cases=len(lost),
               complete=not lost, shards_dir=SHARDS)
    _write_json(scratch / "env.json", env)
    for name in ("samples.csv", "repetitions.csv", "summary.csv", "config.yaml", "env.json"):  # env.json last
        if (scratch / name).is_file():
            os.replace(scratch / name, out / name)
    shutil.rmtree(scratch)
    return summary.to_dict("records"), len(lost)


def _missing_reason(task: Task, state: TaskState | None) -> str:
    where = f"task {task.key}"
    if state is None:
        return f"{where} was not run; convbench run --resume measures it"
    if state.state == "failed":
        job = f" (job {state.job_id})" if state.job_id else ""
        return f"{where}{job} failed before measuring this case: {state.reason}; convbench run --resume measures it"
    return f"{where} ended without measuring this case; convbench run --resume measures it"
