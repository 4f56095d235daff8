"""Progress of ``convbench run``: a live bar on a terminal, plain lines without one.

Off a terminal (``| tee``, nohup, CI logs) rich's bar prints nothing until
the end; :class:`LineProgress` writes a line every few seconds
instead. On ``--resume`` both start at the work the folder already holds.
The unit is one case in one repetition (``n_cases x repeat`` in all).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

from rich.console import Console

from ..sweep.measure import Monitor
from ..sweep.plan import Group

#: Seconds between progress lines when stderr is not a terminal.
LINE_EVERY_S = 5.0


def fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class LineProgress:
    """Progress without a terminal: a plain line at most every ``every`` seconds,
    and always for the first and the last case, so a log shows the sweep moving.

    ``start`` is the number of cases already done (``--resume``): the count
    starts there, and the ETA uses only the rate of the cases measured now.
    """

    def __init__(self, total: int, start: int = 0, every: float = 5.0,
                 write: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic,
                 expected_s: float | None = None):
        self.total, self.start, self.done = total, start, start
        self.expected_s = expected_s  # the plan's estimate of the whole sweep, for the ETA at first
        self.every, self.clock = every, clock
        self.write = write or (lambda line: print(line, flush=True))
        self.t0 = clock()
        self.last: float | None = None
        self.current = ""
        self.first: tuple[float, int] | None = None  # (clock, done) when the first case finished

    def eta(self) -> float:
        """Seconds left: from the plan's estimate until a tenth of the work is done, then from
        the rate measured since the first case finished (the worker's start, the machine probe
        and the first JIT compilation are paid once and would make the rate a wild guess)."""
        measured = self.done - self.start
        left = self.total - self.done
        if self.expected_s is not None and measured < 0.1 * (self.total - self.start):
            return left * self.expected_s / max(self.total, 1)
        if self.first is not None and self.done > self.first[1]:
            return left * (self.clock() - self.first[0]) / (self.done - self.first[1])
        if measured <= 0:
            return math.nan
        return left * (self.clock() - self.t0) / measured

    def line(self) -> str:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (f"[{self.done}/{self.total}] {pct:3.0f}%  {self.current}  "
                f"elapsed {fmt_duration(self.clock() - self.t0)}  ETA {fmt_duration(self.eta())}")

    def update(self, label: str, advance: int = 0) -> None:
        self.current = label
        self.done = min(self.total, self.done + advance)
        now = self.clock()
        if self.first is None and self.done > self.start:
            self.first = (now, self.done)
        first = self.last is None
        if first or self.done >= self.total or now - self.last >= self.every:
            self.last = now
            self.write(self.line())


def noise_note(env: dict) -> str:
    """One line on the noise probe's verdict, where the machine is anything but quiet ("" if quiet)."""
    verdict = (env.get("noise") or {}).get("verdict") or {}
    level = verdict.get("level")
    if not level or level == "quiet":
        return ""
    advice = "; ".join(verdict.get("advice") or [])
    return f"note: the noise probe calls this machine {level}" + (f": {advice}" if advice else "")


def contention_note(rows: list[dict]) -> str:
    """One line on what other processes did during a run (from its summary rows)."""
    retaken = sum(int(r.get("retaken") or 0) for r in rows)
    contended = sum(bool(r.get("contended")) for r in rows)
    loads = [float(r["other_load"]) for r in rows if r.get("other_load") is not None and r["other_load"] == r["other_load"]]
    most = f"; other processes kept up to {max(loads):.1f} cores busy" if loads else ""
    if not retaken and not contended:
        return f"other processes: no sample was preempted{most}"
    return (f"other processes: {retaken} preempted sample(s) retaken, {contended} case(s) still contended "
            f"(flagged `contended`){most}")


def case_label(case: Any) -> str:
    return f"{case.layer.name} {case.spec.layout}/{case.spec.dtype} t{case.threads}: {case.algorithm}"


def work_done(plan: Any, folder: str | Path) -> int:
    """Case-repetitions of ``plan`` that ``--resume`` will not measure again: every
    repetition of the cases in ``folder``'s summary.csv (whole groups only, as the run
    keeps them), plus the repetitions already in repetitions.csv of the other cases.
    Read only; the run itself repairs torn lines (so a torn line may be counted once
    too many or too few: the bar's start, not the results)."""
    from ..results import SUMMARY_COLUMNS, ResultsError
    from ..results.io import read_csv
    from ..sweep.plan import without_cases

    folder = Path(folder)
    repeat = plan.timing.repeat
    try:
        with warnings.catch_warnings():  # a torn line is reported once, by the run itself
            warnings.simplefilter("ignore")
            done = set(read_csv(folder / "summary.csv", SUMMARY_COLUMNS)["case_id"].astype(str))
            reps_path = folder / "repetitions.csv"
            reps = read_csv(reps_path, ["case_id", "repetition"]) if reps_path.is_file() else None
    except (ResultsError, OSError):
        return 0
    todo = without_cases(plan, done)
    finished = (plan.n_cases - todo.n_cases) * repeat
    if reps is None or reps.empty:
        return finished
    open_cases = {c.case_id for g in todo.groups for c in g.cases}
    partial = reps[reps["case_id"].astype(str).isin(open_cases)].drop_duplicates(["case_id", "repetition"])
    return finished + min(len(partial), todo.n_cases * repeat)


class _LineMonitor(Monitor):
    """The sweep's monitor writing :class:`LineProgress` lines."""

    def __init__(self, lines: LineProgress):
        self.lines, self.group = lines, None

    def machine(self, env: dict) -> None:
        note = noise_note(env)
        if note:
            self.lines.write(note)

    def begin(self, group: Group) -> None:
        self.group = group

    def started(self, pos: int) -> None:
        if self.group is not None and 0 <= pos < len(self.group.cases):
            self.lines.current = case_label(self.group.cases[pos])

    def finished(self, pos: int, row: dict, samples: list, phases: list | None = None) -> None:
        label = case_label(self.group.cases[pos]) if self.group is not None and pos >= 0 else self.lines.current
        self.lines.update(label, advance=1)


class _BarMonitor(Monitor):
    """The live bar as a sweep monitor: the running case's name, one step per finished case."""

    def __init__(self, bar: Any, task: Any, eta: LineProgress):
        self.bar, self.task, self.group, self.eta = bar, task, None, eta

    def machine(self, env: dict) -> None:
        note = noise_note(env)
        if note:
            self.bar.console.print(note, highlight=False, soft_wrap=True)

    def begin(self, group: Group) -> None:
        self.group = group

    def started(self, pos: int) -> None:
        if self.group is not None and 0 <= pos < len(self.group.cases):
            self.bar.update(self.task, description=case_label(self.group.cases[pos]))

    def finished(self, pos: int, row: dict, samples: list, phases: list | None = None) -> None:
        self.eta.update("", advance=1)
        self.bar.update(self.task, advance=1, eta=fmt_duration(self.eta.eta()))


class Progress:
    """What :func:`sweep_progress` yields: ``monitor`` for the run, ``stop()`` before printing."""

    def __init__(self, monitor: Monitor, stop: Any):
        self.monitor, self.stop = monitor, stop


def plan_seconds(plan: Any) -> float:
    """A rough estimate of a sweep's run time from its plan alone: per case and repetition,
    the sampling rules at an assumed 20 GFLOP/s, plus set-up; what the ETA starts from."""
    t = plan.timing
    per_rep = sum(max(t.min_time_s, t.min_samples * max(c.spec.flops / 20e9, t.min_sample_time_s)) + 0.05
                  for c in plan.cases)
    return per_rep * t.repeat * (1.2 if plan.phases else 1.0)


@contextlib.contextmanager
def sweep_progress(console: Console, total: int, start: int = 0,
                   every: float = LINE_EVERY_S, expected_s: float | None = None) -> Iterator[Progress]:
    """Progress of ``total`` units of work, ``start`` of them already done, on ``console``."""
    if console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

        # the ETA of the plain lines (plan first, then the measured rate), not rich's own
        # rate, which counts the worker's start and the first JIT compilation as a case
        eta = LineProgress(total, start, every=math.inf, write=lambda line: None, expected_s=expected_s)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"))
        with Bar(*columns, console=console, transient=False) as bar:
            task = bar.add_task("starting (worker, machine metadata)", total=total, completed=start,
                                eta=fmt_duration(eta.eta()))
            yield Progress(_BarMonitor(bar, task, eta), bar.stop)
        return
    lines = LineProgress(total, start, every, write=lambda line: console.print(line, highlight=False,
                                                                                soft_wrap=True),
                         expected_s=expected_s)
    if start:
        lines.write(f"resuming: {start}/{total} already done")
    yield Progress(_LineMonitor(lines), lambda: None)
    if lines.last is not None and lines.done < total:
        lines.write(lines.line())
