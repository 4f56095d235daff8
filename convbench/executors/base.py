"""What every executor shares: a task (one shard of a plan), its state, the executor interface.

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

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping

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


def import_extra(executor: str, extra: str, module: str) -> Any:
    """``module``, imported when the executor first needs it; :class:`MissingExtra` if it is not installed."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(executor, extra, module) from None


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


def failure_reason(exc: BaseException) -> str:
    """One line: the exception's type and first line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


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
