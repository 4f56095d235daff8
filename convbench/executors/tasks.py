"""What runs on a node: one shard measured by the library's own run, attempt by attempt.

A shard resumed on the machine that started it continues in its folder; on
another machine it gets a new attempt folder holding only what the earlier
attempts lack, so rows of two machines never share a folder (see
:mod:`convbench.executors.base` for the folder layout).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..sweep.plan import Plan
from ..sweep.plan import whole_groups, without_cases
from .base import ExecutorError, Task


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
    from ..sweep.session import run

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
        done[folder] = whole_groups(plan)(cases_on_disk(folder))
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
