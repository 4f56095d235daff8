"""The driver: shard a plan into tasks, hand them to an executor, watch, and merge.

See :mod:`convbench.executors.base` for the folder a distributed run writes.
Nothing lives only here: the tasks write the shards; this module only
decides what to submit (everything, or on ``--resume`` the shards with
missing cases), reports progress from the shard folders on disk, records
what happened in ``cluster.json``, and merges.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..sweep.plan import Plan
from .base import CLUSTER_FILE, POLL_S, SHARDS, Executor, ExecutorError, Task, TaskState
from .tasks import _now, _write_json, attempts, cases_on_disk, shard_plan


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
