"""Where a sweep's shards run: here, on a Dask cluster, or as a SLURM job array.

Executors only decide *where*; every shard is measured by the library's own
run into its own folder (see :mod:`.base`), and :func:`execute` merges them.
Dask and submitit are optional: :func:`get_executor` names the extra to
install when one is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import CLUSTER_FILE, Executor, ExecutorError, MissingExtra, Task, TaskState
from .driver import ClusterInterrupted, ClusterOutcome, Progress, execute, is_cluster_run, read_cluster
from .local import LocalExecutor
from .tasks import run_task, shard_plan

EXECUTORS = ("local", "dask", "slurm")


def get_executor(name: str, out_dir: str | Path, **options: Any) -> Executor:
    """The executor called ``name``; ``options`` are its own (``dask_scheduler``,
    ``dask_workers``, ``slurm_cluster``, ``slurm_partition``, ``slurm_time``,
    ``slurm_cpus``, ``slurm_exclusive``). Raises :class:`ExecutorError`
    (:class:`MissingExtra` when its package is not installed)."""
    if name == "local":
        return LocalExecutor()
    if name == "dask":
        from .dask_exec import DaskExecutor

        return DaskExecutor(options.get("dask_scheduler"), workers=options.get("dask_workers") or 1)
    if name == "slurm":
        from .slurm import SlurmExecutor

        return SlurmExecutor(Path(out_dir) / "slurm", cluster=options.get("slurm_cluster") or "slurm",
                             partition=options.get("slurm_partition"), time_min=options.get("slurm_time") or 60,
                             cpus=options.get("slurm_cpus") or 1, exclusive=options.get("slurm_exclusive", True))
    raise ExecutorError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")


__all__ = [
    "CLUSTER_FILE", "ClusterInterrupted", "ClusterOutcome", "EXECUTORS", "Executor", "ExecutorError",
    "LocalExecutor", "MissingExtra", "Progress", "Task", "TaskState", "execute", "get_executor",
    "is_cluster_run", "read_cluster", "run_task", "shard_plan",
]
