"""``--executor slurm``: shards as a SLURM job array through submitit.

One array task per shard, each on a whole node by default (``--exclusive``:
no other job's threads beside the measurement); ``--slurm-cpus`` cores per
task (default: the largest thread count of the sweep), ``--slurm-time``
minutes, ``--slurm-partition``. submitit's logs and pickles go to
``OUT/slurm/``.

``--slurm-cluster local`` runs the same jobs through submitit's local
executor (subprocesses of this machine), for tests and for machines without
SLURM. There the tasks run one after another, not at once: they would
otherwise measure on the same cores at the same time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Executor, ExecutorError, Task, TaskState, failure_reason, import_extra
from .tasks import run_task

CLUSTERS = ("slurm", "local")


def _submitit() -> Any:
    return import_extra("slurm", "slurm", "submitit")


class SlurmExecutor(Executor):
    """A submitit job array (or local jobs, one at a time) and their states."""

    name = "slurm"

    def __init__(self, folder: str | Path, *, cluster: str = "slurm", partition: str | None = None,
                 time_min: int = 60, cpus: int = 1, exclusive: bool = True):
        submitit = _submitit()
        if cluster not in CLUSTERS:
            raise ExecutorError(f"--slurm-cluster must be one of {', '.join(CLUSTERS)}, got {cluster!r}")
        if time_min < 1 or cpus < 1:
            raise ExecutorError(f"--slurm-time and --slurm-cpus must be >= 1, got {time_min} and {cpus}")
        self.cluster, self.partition, self.time_min, self.cpus, self.exclusive = (
            cluster, partition, time_min, cpus, exclusive)
        self.folder = Path(folder).absolute()
        self._submitit = submitit
        self._ex: Any = None
        self._queue: list[Task] = []
        self._jobs: dict[str, Any] = {}
        self._failed: dict[str, TaskState] = {}

    def _executor(self) -> Any:
        """The submitit executor, made at submission: it creates its folder (inside OUT,
        which must not exist before the run checks it)."""
        if self.cluster == "local":
            ex = self._submitit.LocalExecutor(folder=self.folder)
            ex.update_parameters(timeout_min=self.time_min)
            return ex
        ex = self._submitit.SlurmExecutor(folder=self.folder)
        params: dict[str, Any] = dict(time=self.time_min, cpus_per_task=self.cpus, nodes=1, ntasks_per_node=1,
                                      job_name="convbench")
        if self.partition:
            params["partition"] = self.partition
        if self.exclusive:
            params["exclusive"] = True
        ex.update_parameters(**params)
        return ex

    def start(self, tasks: list[Task]) -> None:
        self._ex = self._executor()
        if self.cluster == "local":
            self._queue = list(tasks)  # submitted one at a time by poll()
            self._submit_next()
            return
        try:
            jobs = self._ex.map_array(run_task, tasks)
        except Exception as exc:  # sbatch missing, refused, bad partition ...
            raise ExecutorError(
                f"cannot submit the job array to SLURM: {failure_reason(exc)}. "
                "Check --slurm-partition / --slurm-time / --slurm-cpus; without SLURM, use --slurm-cluster local"
            ) from None
        self._jobs = {t.key: j for t, j in zip(tasks, jobs)}

    def _submit_next(self) -> None:
        if self._queue:
            task = self._queue.pop(0)
            self._jobs[task.key] = self._ex.submit(run_task, task)

    def poll(self) -> dict[str, TaskState]:
        out = {t.key: TaskState("pending") for t in self._queue}
        running = False
        for key, job in self._jobs.items():
            if not job.done():
                out[key] = TaskState("pending", job_id=str(job.job_id))
                running = True
                continue
            if key not in self._failed:
                try:
                    exc = job.exception()
                except Exception as lost:  # never completed: killed, timed out, node lost
                    exc = lost
                self._failed[key] = (TaskState("failed", f"{job.state}: {failure_reason(exc)}", str(job.job_id))
                                     if exc is not None else TaskState("done", job_id=str(job.job_id)))
            out[key] = self._failed[key]
        if self.cluster == "local" and not running and self._queue:
            self._submit_next()
            return self.poll()
        return out

    def check_previous(self, submission: Any) -> None:
        """Jobs of a submission whose driver died keep running on SLURM: refuse to
        submit their shards again while any of them is queued or running."""
        if self.cluster != "slurm" or submission.get("ended"):
            return
        alive = []
        for key, state in (submission.get("states") or {}).items():
            if state.get("state") == "pending" and state.get("job_id"):
                job = self._submitit.SlurmJob(self.folder, state["job_id"])
                if not job.done():
                    alive.append(f"{key} (job {state['job_id']})")
        if alive:
            raise ExecutorError(
                f"{len(alive)} task(s) of the previous submission are still queued or running: {', '.join(alive)}; "
                "wait for them (squeue) or cancel them (scancel), then resume")

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "slurm_cluster": self.cluster, "slurm_partition": self.partition,
                "slurm_time_min": self.time_min, "slurm_cpus": self.cpus, "slurm_exclusive": self.exclusive,
                "submitit_folder": str(self.folder)}
