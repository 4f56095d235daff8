"""Progress of ``convbench run``: a live bar on a terminal, plain lines without one.

Off a terminal (``| tee``, nohup, CI logs) rich's bar prints nothing until
the end; :class:`~.render.LineProgress` writes a line every few seconds
instead. On ``--resume`` both start at the work the folder already holds.
The unit is one case in one repetition (``n_cases x repeat`` in all).
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any, Iterator

from rich.console import Console

from ..sweep.measure import Monitor
from ..sweep.plan import Group
from .render import LineProgress

#: Seconds between progress lines when stderr is not a terminal.
LINE_EVERY_S = 5.0


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
    from ..sweep.session import without_cases

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

    def begin(self, group: Group) -> None:
        self.group = group

    def started(self, pos: int) -> None:
        if self.group is not None and 0 <= pos < len(self.group.cases):
            self.lines.current = case_label(self.group.cases[pos])

    def finished(self, pos: int, row: dict, samples: list) -> None:
        label = case_label(self.group.cases[pos]) if self.group is not None and pos >= 0 else self.lines.current
        self.lines.update(label, advance=1)


class _BarMonitor(Monitor):
    """The live bar as a sweep monitor: the running case's name, one step per finished case."""

    def __init__(self, bar: Any, task: Any):
        self.bar, self.task, self.group = bar, task, None

    def begin(self, group: Group) -> None:
        self.group = group

    def started(self, pos: int) -> None:
        if self.group is not None and 0 <= pos < len(self.group.cases):
            self.bar.update(self.task, description=case_label(self.group.cases[pos]))

    def finished(self, pos: int, row: dict, samples: list) -> None:
        self.bar.update(self.task, advance=1)


class Progress:
    """What :func:`sweep_progress` yields: ``monitor`` for the run, ``stop()`` before printing."""

    def __init__(self, monitor: Monitor, stop: Any):
        self.monitor, self.stop = monitor, stop


@contextlib.contextmanager
def sweep_progress(console: Console, total: int, start: int = 0,
                   every: float = LINE_EVERY_S) -> Iterator[Progress]:
    """Progress of ``total`` units of work, ``start`` of them already done, on ``console``."""
    if console.is_terminal:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        with Bar(*columns, console=console, transient=False) as bar:
            task = bar.add_task("starting (worker, machine metadata)", total=total, completed=start)
            yield Progress(_BarMonitor(bar, task), bar.stop)
        return
    lines = LineProgress(total, start, every, write=lambda line: console.print(line, highlight=False,
                                                                                soft_wrap=True))
    if start:
        lines.write(f"resuming: {start}/{total} already done")
    yield Progress(_LineMonitor(lines), lambda: None)
    if lines.last is not None and lines.done < total:
        lines.write(lines.line())
