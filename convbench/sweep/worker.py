"""The isolated worker's side (``python -m convbench.sweep.worker``): measure what the parent sends.

The parent (:class:`~.isolation.WorkerPool`) starts this module as a fresh
process with a pipe, a heartbeat file and a file for crash reports. The
worker loads the parent's plugins, caps its own memory, then measures one
group per message with :func:`~.measure.measure_group`, reporting through
the heartbeat which case (and which sample) runs, and sending each row back
as soon as it is final. Ctrl-C is the parent's to handle; the worker dies
with its parent and writes no core files.
"""

from __future__ import annotations

import mmap
import os
import signal
import struct
import sys
from multiprocessing.connection import Connection

from ..machine.measuring import prepare_measuring_process
from ..machine.memory import cap_process_memory
from ..registry import list_algorithms, load_plugin
from .measure import Monitor, Row, measure_group

#: heartbeat layout: beat counter, case position, sample number, stage text
BEAT = struct.Struct("<qqq104s")


class _WorkerMonitor(Monitor):
    def __init__(self, conn: Connection, beat: mmap.mmap):
        self.conn = conn
        self.beat = beat
        self.count = 0
        self.pos = -2

    def _write(self, pos: int, sample: int, stage: str, bump: bool) -> None:
        if bump:
            self.count += 1
        self.beat[: BEAT.size] = BEAT.pack(self.count, pos, sample, stage.encode("utf-8")[:104])

    def stage(self, pos: int, stage: str) -> None:
        new = pos != self.pos
        self.pos = pos
        self._write(pos, -1, stage, new)

    def started(self, pos: int) -> None:
        self.conn.send(("start", pos))

    def sample(self, pos: int, n: int) -> None:
        self.pos = pos
        self._write(pos, n, f"sample {n}", True)

    def sampling(self, n_live: int) -> None:
        self.pos = -1
        self._write(-1, -1, "the interleaved sampling", True)

    def finished(self, pos: int, row: Row, samples: list[tuple[int, Row]], phases: list[Row] | None = None) -> None:
        self.conn.send(("done", pos, dict(row), list(samples), list(phases or [])))


def _die_with_parent(parent_pid: int) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - not Linux
        pass
    if os.getppid() != parent_pid:
        os._exit(0)  # the parent is already gone


def serve(conn: Connection, beat: mmap.mmap) -> int:
    """The worker loop: init, then one group per message until ``stop`` or EOF."""
    try:
        _, init = conn.recv()
        for target in init["plugins"]:
            load_plugin(target)
        names = list_algorithms()
        limits = cap_process_memory(init["memory_limit"])
        conn.send(("ready", {"algorithms": names, "pid": os.getpid(), **limits}))
    except EOFError:
        return 0
    except BaseException as exc:
        conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return 1
    monitor = _WorkerMonitor(conn, beat)
    while True:
        try:
            kind, job = conn.recv()
        except (EOFError, OSError):
            return 0
        if kind == "stop":
            return 0
        try:
            measure_group(job["group"], job["timing"], job["seed"], job["baseline"],
                          memory_limit=init["memory_limit"], monitor=monitor,
                          repetition=job.get("repetition", 0), pin=job.get("pin"),
                          phases=job.get("phases", True))
            conn.send(("end", None))
        except (BrokenPipeError, ConnectionResetError):
            return 0
        except BaseException as exc:  # outside any case: the inputs, the thread pools
            text = str(exc).strip().splitlines()
            conn.send(("group-error", f"the group's set-up raised {type(exc).__name__}: {text[0] if text else ''}"))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    fd, beat_fd, fault_fd, parent_pid = (int(a) for a in args[:4])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent(parent_pid)
    try:
        import faulthandler
        import resource

        # a crash writes the Python stacks to a file the parent reads: the culprit's frame goes
        # into the crashed row, the whole report to stderr
        report = os.fdopen(fault_fd, "w", closefd=False)
        faulthandler.enable(file=report, all_threads=True)
        faulthandler.register(signal.SIGUSR1, file=report, all_threads=True)  # "where are you?" before a timeout kill
        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    except Exception:  # pragma: no cover
        pass
    prepare_measuring_process()
    beat = mmap.mmap(beat_fd, BEAT.size)
    return serve(Connection(fd), beat)


if __name__ == "__main__":
    sys.exit(main())
