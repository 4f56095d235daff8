"""``--executor local`` for a distributed run's folder: its shards one after another, here.

What finishes on a workstation what a cluster left missing, and what the
driver's own tests use: the shard folders are those of any executor.
"""

from __future__ import annotations

from .base import Executor, Task, TaskState, failure_reason
from .tasks import run_task


class LocalExecutor(Executor):
    """Runs the tasks one after another in this process (each in its isolated worker)."""

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
