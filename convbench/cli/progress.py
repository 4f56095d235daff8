"""Progress of ``convbench run``: a live bar on a terminal, plain lines without one.

Off a terminal (``| tee``, nohup, CI logs) rich's bar prints nothing until
the end; :class:`~.render.LineProgress` writes a line every few seconds
instead. On ``--resume`` both start at the cases the folder already holds.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

from rich.console import Console

from .render import LineProgress

#: Seconds between progress lines when stderr is not a terminal.
LINE_EVERY_S = 5.0


def case_label(case: Any) -> str:
    return f"{case.layer.name} {case.spec.layout}/{case.spec.dtype} t{case.threads}: {case.algorithm}"


def cases_done(plan: Any, folder: str | Path) -> int:
    """How many of ``plan``'s cases ``--resume`` will not measure again: the cases of
    whole groups already in ``folder``'s summary.csv (read only; the run repairs)."""
    from ..results import SUMMARY_COLUMNS, ResultsError, read_csv
    from ..sweep.measure import without_cases

    path = Path(folder) / "summary.csv"
    try:
        with warnings.catch_warnings():  # a torn line is reported once, by the run itself
            warnings.simplefilter("ignore")
            done = set(read_csv(path, SUMMARY_COLUMNS)["case_id"].astype(str))
    except (ResultsError, OSError):
        return 0
    return plan.n_cases - without_cases(plan, done).n_cases


@contextlib.contextmanager
def sweep_progress(console: Console, total: int, start: int = 0,
                   every: float = LINE_EVERY_S) -> Iterator[Any]:
    """A ``progress(case, done)`` callback for :func:`convbench.sweep.measure.run`
    (with a ``stop()`` for interruptions), drawing on ``console``."""
    if console.is_terminal:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("starting (worker, machine metadata)", total=total, completed=start)

            def on_bar(case: Any, done: bool) -> None:
                bar.update(task, description=case_label(case), advance=1 if done else 0)

            yield _Callback(on_bar, bar.stop)
        return
    lines = LineProgress(total, start, every, write=lambda line: console.print(line, highlight=False,
                                                                                soft_wrap=True))

    def on_line(case: Any, done: bool) -> None:
        lines.update(case_label(case), advance=1 if done else 0)

    if start:
        lines.write(f"resuming: {start}/{total} cases already done")
    yield _Callback(on_line, lambda: None)
    if lines.last is not None and lines.done < total:
        lines.write(lines.line())


class _Callback:
    """The progress callback, plus ``stop()`` (end a live display before printing)."""

    def __init__(self, call: Callable[[Any, bool], None], stop: Callable[[], None]):
        self._call, self.stop = call, stop

    def __call__(self, case: Any, done: bool) -> None:
        self._call(case, done)
