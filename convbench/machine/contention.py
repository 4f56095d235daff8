"""What other processes did while a case ran: preempted samples, other load, steal time.

A busy neighbour does not slow a repetition evenly: it takes a core for whole
scheduler slices, so some samples are preempted and others not, and a drift
reference timed once per round misses it. So every sample is also timed on
the CPU clock: a one-thread sample's thread CPU time (``CLOCK_THREAD_CPUTIME_ID``)
falls short of its wall time by the time it was not running; a multi-thread
sample is judged from the process's CPU time against threads x wall time
(helper threads that poll while they wait count as running, so this errs
towards "not preempted"). :func:`ran_share` is that fraction; a sample below
:data:`RAN_MIN` is retaken by the sweep (:mod:`convbench.sweep.measure`).

Beside it, :class:`LoadMeter` reads ``/proc/stat`` and ``/proc/self/stat``
around a repetition: how many cores other processes kept busy (all busy
time minus this process's own and its parent's, the sweep's) and the
hypervisor's steal time.
:func:`wait_quiet` waits, up to a limit, until other processes leave the
cores free (``convbench run --wait-quiet SECONDS``). Off Linux the meter
and the wait say "unknown" and do nothing; the CPU clocks exist everywhere.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

#: A sample that ran less than this share of its wall time was preempted: retake it.
RAN_MIN = 0.90
#: A repetition with more than this share of its samples retaken is contended (measured again, then flagged).
CONTENDED_SHARE = 0.20
#: Other processes keep fewer cores than this busy on a quiet machine; a repetition during
#: which they kept more busy is contended too (:func:`contended`).
QUIET_CORES = 0.3

_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: The shortest window, in clock ticks, over which other processes' load is given as a number.
MIN_TICKS = 20


def ran_share(cpu_s: float, wall_s: float, threads: int) -> float:
    """The share of ``wall_s`` a sample's ``threads`` were running (``cpu_s``: their CPU time)."""
    if wall_s <= 0:
        return 1.0
    return min(1.0, cpu_s / (wall_s * max(1, threads)))


def contended(retaken: int, taken: int, other_load: float | None) -> bool:
    """Whether a repetition's numbers are suspect: more than :data:`CONTENDED_SHARE` of its
    ``taken`` samples were ``retaken``, or other processes kept :data:`QUIET_CORES` or more
    busy meanwhile. The second rule is needed because a busy neighbour on another vCPU
    slows a sample it never preempts: vCPUs of a VM may be hyperthreads of one physical
    core, or share its caches and memory. Measured alone on the 2-vCPU Zen 4 VM, two 50%-duty
    busy loops (about one core's worth, which the scheduler mostly kept off the
    sweep's pinned core: 585 samples retaken in 1,710) moved 92% of the medians by more than
    10% and 27% of the speedups, with no case over the retaken share."""
    return retaken > CONTENDED_SHARE * taken or (other_load is not None and other_load >= QUIET_CORES)


def cpu_clock(threads: int) -> Any:
    """The CPU clock to set against a sample's wall time: the thread's for one thread, else the process's."""
    return time.thread_time if threads <= 1 else time.process_time


def _proc_stat() -> tuple[float, float] | None:
    """(busy jiffies of all cores, steal jiffies) from /proc/stat; None off Linux."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    values = [float(v) for v in fields[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0.0] * 8)[:8]
    return user + nice + system + irq + softirq, steal


def _jiffies(pid: str) -> float | None:
    """User + system time in jiffies of process ``pid`` (every thread); None where unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return float(fields[11]) + float(fields[12])  # utime, stime (fields 14 and 15 of stat)


def _own_jiffies() -> float | None:
    """This process's time and its parent's, in jiffies; None off Linux. The parent is the
    sweep that started this worker (or the shell): writing rows and starting a worker after
    a crash is the sweep's own work, not another process's load."""
    own = _jiffies("self")
    if own is None:
        return None
    return own + (_jiffies(str(os.getppid())) or 0.0)


class LoadMeter:
    """Other processes' load and steal time between :meth:`start` and :meth:`stop`."""

    def start(self) -> "LoadMeter":
        self._t = time.monotonic()
        self._stat, self._own = _proc_stat(), _own_jiffies()
        return self

    def stop(self) -> dict[str, float | None]:
        """``other_load``: cores other processes kept busy on average; ``steal``: the share of
        all cores' time the hypervisor gave to other guests. ``None`` where unknown."""
        elapsed = time.monotonic() - self._t
        stat, own = _proc_stat(), _own_jiffies()
        # the kernel counts in ticks (1/_HZ s): over fewer than MIN_TICKS of them one tick
        # more or less is a whole core, so a short window says "unknown", not a number
        if stat is None or self._stat is None or own is None or self._own is None or elapsed * _HZ < MIN_TICKS:
            return {"other_load": None, "steal": None}
        busy = (stat[0] - self._stat[0]) - (own - self._own)
        cores = os.cpu_count() or 1
        return {"other_load": min(float(cores), max(0.0, busy / _HZ / elapsed)),
                "steal": min(1.0, max(0.0, (stat[1] - self._stat[1]) / _HZ / elapsed / cores))}


def other_load(seconds: float = 0.25) -> float | None:
    """Cores other processes keep busy, over ``seconds`` (None where unknown)."""
    meter = LoadMeter().start()
    time.sleep(seconds)
    return meter.stop()["other_load"]


def wait_quiet(limit_s: float, threshold: float = QUIET_CORES) -> dict[str, Any]:
    """Wait until other processes keep fewer than ``threshold`` cores busy, at most ``limit_s``.

    Returns ``{"waited_s", "quiet": bool, "other_load"}`` (the last reading)."""
    start = time.monotonic()
    load = other_load()
    while load is not None and load >= threshold and time.monotonic() - start < limit_s:
        load = other_load(0.5)
    quiet = load is None or load < threshold
    return {"waited_s": time.monotonic() - start, "quiet": quiet, "other_load": load}
