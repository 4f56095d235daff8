"""One writer per results folder: an exclusive OS lock on a file in the folder.

Two writers appending to one folder (two ``--resume`` at once, a scheduler
retrying a job) each measure what they think is missing and both append it:
the folder ends with cases written twice. :class:`FolderLock` takes
``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``DIR/.convbench.lock`` and writes its
holder (pid, host, start time, command) into that file, so a second writer
fails at once with :class:`FolderLocked` naming the first.

The kernel drops a flock when its process dies, however it dies, so a killed
run never leaves a stale lock; the file stays (deleting it would let a
writer lock an unlinked file while another creates a new one) and is emptied
on release. flock is per open file, not per process: a second lock of the
same folder in one process also fails. On network filesystems flock may only
be local to one host; run the writers of one folder on one machine.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from .errors import ResultsError
from .schema import LOCK_FILE


class FolderLocked(ResultsError):
    """Another process holds the folder's lock; ``holder`` is what it wrote (may be empty)."""

    def __init__(self, folder: Path, holder: dict[str, Any]):
        self.folder, self.holder = folder, holder
        if holder.get("pid"):
            who = (f"pid {holder.get('pid')} on {holder.get('host', '?')}, "
                   f"started {holder.get('start_time', '?')}")
            if holder.get("command"):
                who += f": {holder['command']}"
        else:
            who = "a process that has not yet said who it is"
        super().__init__(
            f"{folder} is being written by another convbench ({who}); one writer per results folder: "
            "wait for it to finish (or stop it), then resume"
        )


def _program() -> str:
    """``convbench`` for the CLI however started (script or ``python -m``), else the script's name."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    return "convbench" if name in ("convbench", "__main__.py") else name


def _holder_info() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "start_time": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "command": " ".join([_program(), *sys.argv[1:]])[:300],
    }


def read_holder(folder: str | Path) -> dict[str, Any]:
    """What the current (or last) holder wrote into the lock file; ``{}`` if nothing readable."""
    try:
        text = (Path(folder) / LOCK_FILE).read_text()
        data = json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class FolderLock:
    """An exclusive, non-blocking lock on a results folder (a context manager).

    ``acquire()`` creates the folder if needed, then raises
    :class:`FolderLocked` if another open file holds the lock, or
    :class:`ResultsError` if the folder cannot be written.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> "FolderLock":
        import fcntl

        if self._file is not None:
            return self
        path = self.folder / LOCK_FILE
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # "a+": open without truncating what the holder wrote, so a loser can read it
            f = open(path, "a+")
        except OSError as exc:
            raise ResultsError(f"cannot lock {self.folder}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise FolderLocked(self.folder, read_holder(self.folder)) from None
        except OSError as exc:
            f.close()
            raise ResultsError(f"cannot lock {self.folder}: {exc.strerror or exc}") from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps(_holder_info()) + "\n")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        """Empty the lock file (it names no holder any more) and drop the lock."""
        f, self._file = self._file, None
        if f is None:
            return
        try:
            f.seek(0)
            f.truncate()
        except OSError:
            pass  # the lock goes with the close below anyway
        f.close()

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
