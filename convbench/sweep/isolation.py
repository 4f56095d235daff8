"""Crash isolation: cases are measured in a long-lived worker process.

A numba kernel can segfault, a plugin can call ``abort()``, hang, or
allocate the machine away. None of that may cost a sweep the rows it has
already measured, so :func:`convbench.sweep.session.run` hands each group of
cases to a worker (``python -m convbench.sweep.worker``, :mod:`.worker`) and
only writes rows. This module is the parent's side: :class:`WorkerPool`.

- The worker is started once per sweep and reused while healthy (imports and
  JIT once); it times exactly as in-process (:func:`.measure.measure_group`).
- It loads the same plugins as the parent; an algorithm registered only in
  the parent's memory (a class defined at runtime) cannot be seen there and
  is refused up front, with the advice to run without isolation.
- It reports which case (and sample) is running through a shared "heartbeat"
  file, outside the timed regions; finished cases come back over a pipe.
- If it dies, the running case becomes a ``crashed`` row naming the signal;
  if no progress is seen for ``case_timeout`` seconds (one case's set-up, or
  one sample), it is killed and the case becomes a ``timeout`` row. A fresh
  worker then measures the group's unfinished cases without the culprit,
  interleaved as before; after a second failure in the same group the rest
  run one case at a time, so a crash is charged to the case that caused it.
- It caps its data segment (``RLIMIT_DATA``, see :mod:`convbench.machine.memory`),
  writes no core files, ignores Ctrl-C (the parent handles it) and dies
  with its parent.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection, Pipe
from pathlib import Path
from typing import Any

from .. import registry
from ..machine.malloc_policy import BLAS_ENV
from ..timing import TimingSettings
from .measure import GroupResult, Monitor, Row, base_row, finish_rows
from .plan import Case, Group
from .worker import BEAT

#: Seconds a case may go without progress (its set-up, or any one sample) in
#: the isolated worker before it is stopped and becomes a ``timeout`` row.
DEFAULT_CASE_TIMEOUT = 300.0
#: seconds a new worker may take to import and load plugins (at least)
START_TIMEOUT = 120.0


def check_case_timeout(seconds: float) -> float:
    """The case timeout as a float; ``ValueError`` unless it is a positive number of seconds."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0:
        raise ValueError(f"must be a positive number of seconds, got {seconds!r}")
    return value


class WorkerError(Exception):
    """The worker cannot be started or cannot run this plan; the message says why."""


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


# -- the parent's side ------------------------------------------------------------


@dataclasses.dataclass
class _Failure:
    status: str  # "crashed" or "timeout" or "error"
    reason: str
    pos: int  # position in the attempted cases; -1: not one case's fault


@dataclasses.dataclass
class _Attempt:
    done: dict[int, tuple[Row, list[tuple[int, Row]], list[Row]]] = dataclasses.field(default_factory=dict)
    failure: _Failure | None = None


class WorkerPool:
    """One worker process at a time, restarted after a crash or a timeout."""

    def __init__(self, plugins: list[str] | None = None, *, memory_limit: int | None = None,
                 case_timeout: float = DEFAULT_CASE_TIMEOUT, start_timeout: float | None = None):
        case_timeout = check_case_timeout(case_timeout)
        self.plugins = list(plugins or [])
        self.memory_limit = memory_limit
        self.case_timeout = float(case_timeout)
        self.start_timeout = start_timeout if start_timeout is not None else max(START_TIMEOUT, self.case_timeout)
        self.starts = 0  # how many workers were started (1 for a healthy sweep)
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._beat_file: Any = None
        self._beat_map: mmap.mmap | None = None
        self._fault_file: Any = None

    # lifecycle
    def __enter__(self) -> "WorkerPool":
        self._ensure()
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
        else:  # Ctrl-C or an error: do not wait for the group in flight
            self._discard()

    def _ensure(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._discard()
        self._start()

    def _start(self) -> None:
        self._beat_file = tempfile.TemporaryFile()
        self._beat_file.write(b"\0" * BEAT.size)
        self._beat_file.flush()
        self._beat_map = mmap.mmap(self._beat_file.fileno(), BEAT.size)
        self._fault_file = tempfile.TemporaryFile()
        parent, child = Pipe(duplex=True)
        root = str(Path(__file__).resolve().parents[2])  # the folder holding the convbench package
        env = {**BLAS_ENV, **os.environ}  # a user's own setting wins
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        fds = (child.fileno(), self._beat_file.fileno(), self._fault_file.fileno())
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "convbench.sweep.worker", *map(str, fds), str(os.getpid())],
                pass_fds=fds, stdin=subprocess.DEVNULL, env=env,
            )
        except OSError as exc:
            raise WorkerError(f"cannot start the worker process ({sys.executable}): {exc}") from None
        finally:
            child.close()
        self._conn = parent
        self.starts += 1
        parent.send(("init", {"plugins": self.plugins, "memory_limit": self.memory_limit}))
        msg = self._wait_ready()
        if msg[0] != "ready":
            self._discard()
            raise WorkerError(f"the worker process could not start: {msg[1]}")
        self.info = msg[1]

    def _wait_ready(self) -> tuple:
        assert self._conn is not None and self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._conn.poll(0.5):
                try:
                    return self._conn.recv()
                except (EOFError, OSError):
                    break
            if self._proc.poll() is not None and not self._conn.poll(0):
                break
        else:
            return ("fatal", f"it did not report ready within {self.start_timeout:g} s")
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return ("fatal", "it closed its pipe without reporting ready")
        how = f"was killed by {_signal_name(-code)}" if code and code < 0 else f"exited with status {code}"
        return ("fatal", f"it {how} while importing convbench and the plugins {self.plugins or ''}".rstrip())

    def _discard(self) -> None:
        """Forget the current worker (killing it if it still runs)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        for obj in (self._conn, self._beat_map, self._beat_file, self._fault_file):
            try:
                if obj is not None:
                    obj.close()
            except Exception:  # pragma: no cover
                pass
        self._proc = self._conn = self._beat_map = self._beat_file = self._fault_file = None

    def close(self) -> None:
        """Stop the worker: ask politely, then kill. A later group starts a fresh one."""
        if self._proc is not None and self._proc.poll() is None and self._conn is not None:
            try:
                self._conn.send(("stop", None))
                self._proc.wait(timeout=5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        self._discard()

    def check_algorithms(self, names: list[str]) -> None:
        """Refuse a plan whose algorithms the worker cannot see."""
        known = set(self.info.get("algorithms", []))
        _refuse([n for n in names if n not in known])


    # measuring
    def _read_beat(self) -> tuple[int, int, int, str]:
        assert self._beat_map is not None
        beat, pos, sample, stage = BEAT.unpack(self._beat_map[: BEAT.size])
        return beat, pos, sample, stage.rstrip(b"\0").decode("utf-8", "replace")

    def measure(self, group: Group, timing: TimingSettings, seed: int = 0, baseline: str | None = None,
                monitor: Monitor | None = None, **options: Any) -> GroupResult:
        """Measure ``group`` in the worker; every case ends as one row whatever the worker does.

        ``monitor`` hears ``begin``, ``started`` and ``finished`` (positions in
        ``group.cases``) as the worker reports them; ``options`` are ``measure_group``'s
        ``repetition``, ``pin`` and ``phases``.
        """
        mon = monitor or Monitor()
        mon.begin(group)
        n = len(group.cases)
        final: dict[int, Row] = {}
        samples: list[tuple[int, int, Row]] = []
        phase_rows: dict[int, list[Row]] = {}
        failures = 0
        attempt_no = 0
        while len(final) < n:
            pending = [p for p in range(n) if p not in final]
            batches = [[p] for p in pending] if failures >= 2 else [pending]
            for batch in batches:
                sub = dataclasses.replace(group, cases=tuple(group.cases[p] for p in batch))
                attempt = self._attempt(sub, timing, seed, baseline, mon, batch, options)
                for i, (row, smp, phs) in attempt.done.items():
                    final[batch[i]], phase_rows[batch[i]] = row, phs
                    samples.extend((attempt_no, seq, s) for seq, s in smp)
                attempt_no += 1
                f = attempt.failure
                if f is None:
                    for i, p in enumerate(batch):  # a worker that ended without a row for a case
                        if p not in final:
                            final[p] = self._failed_row(group.cases[p], seed, baseline, "error",
                                                        "the worker finished the group without a row for this case")
                    continue
                failures += 1
                blamed = [batch[f.pos]] if 0 <= f.pos < len(batch) else [p for p in batch if p not in final]
                for p in blamed:
                    final[p] = self._failed_row(group.cases[p], seed, baseline, f.status, f.reason)
                    mon.finished(p, final[p], [])
                if len(batches) > 1:
                    continue
                break  # re-plan the rest of the group after a failure
        rows = [final[p] for p in range(n)]
        finish_rows(rows, group.spec.flops, baseline)
        samples.sort(key=lambda item: item[:2])  # in the order taken
        return GroupResult(rows, [s for _, _, s in samples], [p for q in sorted(phase_rows) for p in phase_rows[q]])

    @staticmethod
    def _failed_row(case: Case, seed: int, baseline: str | None, status: str, reason: str) -> Row:
        row = base_row(case, seed, baseline)
        row.update(status=status, reason=reason)
        return row

    def _attempt(self, group: Group, timing: TimingSettings, seed: int, baseline: str | None,
                 mon: Monitor, positions: list[int], options: dict[str, Any]) -> _Attempt:
        """Measure ``group`` (the cases at ``positions`` of the whole group) in the worker once;
        ``options``: measure_group's ``repetition``, ``pin`` and ``phases``."""
        out = _Attempt()
        job = {"group": group, "timing": timing, "seed": seed, "baseline": baseline, **options}
        for retry in (False, True):  # a worker that died between groups is replaced once
            self._ensure()
            assert self._conn is not None and self._proc is not None
            try:
                self._conn.send(("measure", job))
                break
            except (OSError, ValueError):
                self._discard()
                if retry:
                    raise WorkerError("the worker process dies before it can take a group") from None
        timeout = self.case_timeout
        deadline = time.monotonic() + timeout
        last_beat = self._read_beat()[0]
        while True:
            wait = max(0.0, min(deadline - time.monotonic(), 5.0))
            try:
                ready = self._conn.poll(wait)
            except (EOFError, OSError):
                ready = True
            if ready:
                try:
                    msg = self._conn.recv()
                except (EOFError, OSError):
                    out.failure = self._crash(self._read_beat()[1])
                    return out
                kind = msg[0]
                if kind == "start":
                    mon.started(positions[msg[1]])
                elif kind == "done":
                    out.done[msg[1]] = (msg[2], msg[3], msg[4])
                    mon.finished(positions[msg[1]], msg[2], msg[3], msg[4])
                elif kind == "group-error":
                    out.failure = _Failure("error", msg[1], -1)
                    return out
                elif kind == "end":
                    return out
                deadline = time.monotonic() + timeout
                continue
            if self._proc.poll() is not None:
                continue  # the pipe reports EOF next
            beat = self._read_beat()
            if beat[0] != last_beat:
                last_beat = beat[0]
                deadline = time.monotonic() + timeout
                continue
            if time.monotonic() >= deadline:
                _, pos, _, stage = beat
                where = self._dump_stack()
                self._discard()
                at = f" (at {where})" if where else ""
                reason = (f"no progress for {timeout:g} s (the case timeout) during {stage or 'the case'}{at}; "
                          "the worker was stopped")
                out.failure = _Failure("timeout", reason, pos)
                return out

    def _crash(self, pos: int) -> _Failure:
        """The worker is gone (or broke its pipe): what killed it, during what."""
        assert self._proc is not None
        _, beat_pos, _, stage = self._read_beat()
        try:
            code = self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = None
        where = self._culprit()
        self._discard()
        during = f" during {stage}" if stage else ""
        if code is None:
            how = "closed its pipe and was stopped"
        elif code < 0:
            name = _signal_name(-code)
            how = f"was killed by {name} (signal {-code})"
            if -code == signal.SIGKILL:
                how += ", e.g. by the out-of-memory killer"
        else:
            how = f"exited with status {code}"
        at = f" (at {where})" if where else ""
        return _Failure("crashed", f"the worker process {how}{during}{at}", beat_pos if pos < 0 else pos)

    def _dump_stack(self) -> str | None:
        """Ask a hung worker where it is (faulthandler on SIGUSR1), before it is killed."""
        if self._proc is None or self._proc.poll() is not None or not hasattr(signal, "SIGUSR1"):
            return None
        try:
            os.kill(self._proc.pid, signal.SIGUSR1)
        except OSError:  # pragma: no cover
            return None
        time.sleep(0.2)
        return self._culprit()

    def _culprit(self) -> str | None:
        """The innermost Python frame of the crashed thread, from faulthandler's report."""
        if self._fault_file is None:
            return None
        try:
            self._fault_file.seek(0)
            text = self._fault_file.read().decode("utf-8", "replace")
        except OSError:  # pragma: no cover
            return None
        lines = [l for l in text.splitlines() if not l.startswith("Extension modules:")]
        if lines:  # the full report, for the plugin's author
            sys.stderr.write("convbench worker: " + "\n".join(lines) + "\n")
        self._fault_file.seek(0)
        self._fault_file.truncate()
        start = next((i for i, l in enumerate(lines) if l.startswith("Current thread")), None)
        for line in lines[start + 1:] if start is not None else []:
            m = re.match(r'\s*File "(.+)", line (\d+) in (\S+)', line)
            if m:
                return f"{Path(m.group(1)).name}:{m.group(2)} in {m.group(3)}"
        return None


def _refuse(missing: list[str]) -> None:
    if missing:
        raise WorkerError(
            f"algorithm(s) {', '.join(map(repr, missing))} are registered in this process only, so the "
            "isolated worker cannot load them; register them from a plugin module or .py file "
            "(a plugin of the run or 'plugins:' in the config), or run without isolation, in this process "
            "(a crash then ends the sweep)"
        )


def check_loadable(names: list[str]) -> None:
    """Refuse, before any worker starts, algorithms registered at runtime (not by loading
    a module, a file or an entry point): a worker cannot load them."""
    _refuse(registry.registered_at_runtime(names))
