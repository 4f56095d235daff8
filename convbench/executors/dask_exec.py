"""``--executor dask``: shards as Dask tasks, at most one measuring per node.

With ``--dask-scheduler tcp://HOST:PORT`` the tasks go to a running cluster;
its workers must offer the ``bench`` resource, one per node
(``dask worker tcp://HOST:PORT --nthreads 1 --resources bench=1``): every
task asks for ``bench=1``, so two measurements never share a node's cores.
Without a scheduler a ``distributed.LocalCluster`` on 127.0.0.1 is started
(for trying it out, and for tests); its workers share this machine, so more
than one of them (``--dask-workers``) measures with a neighbour.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from .base import Executor, ExecutorError, Task, TaskState, failure_reason, import_extra
from .tasks import run_task

#: The worker resource a benchmark task holds: give each node exactly one.
RESOURCE = "bench"
#: Seconds to wait for a scheduler to answer.
CONNECT_TIMEOUT_S = 20


def _distributed() -> Any:
    return import_extra("dask", "dask", "distributed")


class DaskExecutor(Executor):
    """Submits each task with ``resources={"bench": 1}`` and watches the futures."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int = 1):
        distributed = _distributed()
        self.scheduler = scheduler
        self.cluster = None
        self._futures: dict[str, Any] = {}
        try:
            if scheduler:
                self.client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S)
            else:
                if workers < 1:
                    raise ExecutorError(f"--dask-workers must be >= 1, got {workers}")
                # processes, one thread each: a task's own isolated worker sets its thread pools
                self.cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address=None, worker_dashboard_address=None, resources={RESOURCE: 1},
                    silence_logs=logging.ERROR)
                self.client = distributed.Client(self.cluster)
        except ExecutorError:
            raise
        except Exception as exc:  # unreachable scheduler, a LocalCluster that cannot start, ...
            self.close()
            where = scheduler or "a local cluster"
            raise ExecutorError(f"cannot connect to the Dask scheduler at {where}: {failure_reason(exc)}") from None
        self.workers = workers if not scheduler else None
        if scheduler:
            self._check_resource()

    def _check_resource(self) -> None:
        """A cluster without the resource would queue the tasks forever: refuse it now."""
        info = self.client.scheduler_info()
        workers = info.get("workers", {})
        if not any((w.get("resources") or {}).get(RESOURCE) for w in workers.values()):
            self.close()
            raise ExecutorError(
                f"no worker of {self.scheduler} offers the '{RESOURCE}' resource ({len(workers)} worker(s) connected); "
                f"start one worker per node with: dask worker {self.scheduler} --nthreads 1 --resources {RESOURCE}=1"
            )

    def start(self, tasks: list[Task]) -> None:
        run_id = uuid.uuid4().hex[:8]  # futures of an earlier run (a resume) must not be reused
        for task in tasks:
            self._futures[task.key] = self.client.submit(
                run_task, task, key=f"convbench-{task.key}-{run_id}", pure=False, resources={RESOURCE: 1})

    def poll(self) -> dict[str, TaskState]:
        out = {}
        for key, future in self._futures.items():
            status = future.status
            if status == "finished":
                out[key] = TaskState("done")
            elif status in ("error", "lost", "cancelled"):
                reason = status
                if status == "error":
                    try:
                        reason = failure_reason(future.exception(timeout=5))
                    except Exception as exc:  # the scheduler may be gone too
                        reason = failure_reason(exc)
                out[key] = TaskState("failed", f"Dask task {status}: {reason}")
            else:
                out[key] = TaskState("pending")
        return out

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "dask_scheduler": self.scheduler or "LocalCluster (127.0.0.1)",
                "dask_workers": self.workers, "resource": f"{RESOURCE}=1"}
