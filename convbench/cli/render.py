"""How the command line shows tables and progress, on a terminal and off it.

On a terminal a table is a rich table; piped or redirected (``| grep``,
``| tee``, CI logs) it is plain text, one line per row, never wrapped, so
names stay whole for ``grep`` and copy-paste. ``--format csv|json`` gives
the same rows for programs. In every mode:

- identifiers (algorithm and layer names) are never truncated or wrapped;
- columns whose value is the same on every row (dtype, threads ...) move to
  one header line (``dtype: float32, threads: 1``) instead of taking width.

Progress of a sweep is a live bar on a terminal and, without one, a plain
line every few seconds (done/total, the current case, the ETA).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence, TextIO

from rich.console import Console
from rich.text import Text

FORMATS = ("table", "csv", "json")


def check_format(fmt: str) -> str:
    """``fmt`` lower-cased if it is a known output format, else ``ValueError`` naming them."""
    value = (fmt or "table").strip().lower()
    if value not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return value


def plain(cell: Any) -> str:
    """A cell without rich markup (``[red]x[/]`` -> ``x``)."""
    if isinstance(cell, Text):
        return cell.plain
    text = str(cell)
    if "[" not in text:
        return text
    try:
        return Text.from_markup(text).plain
    except Exception:  # not markup after all (e.g. "[95% CI]")
        return text


@dataclass
class Column:
    name: str
    justify: str = "left"
    #: Identifiers never wrap; only long prose columns (descriptions) may.
    wrap: bool = False
    #: May move to the header line when every row has the same value.
    hoist: bool = False


@dataclass
class Grid:
    """A table to show: the same calls as ``rich.table.Table`` (``add_column``,
    ``add_row``) so call sites read as before, rendered by :func:`show`."""

    title: str = ""
    columns: list[Column] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)

    def add_column(self, name: str, justify: str = "left", *, wrap: bool = False, hoist: bool = False) -> None:
        self.columns.append(Column(name, justify, wrap, hoist))

    def add_row(self, *cells: Any) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"row has {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))

    def records(self) -> list[dict[str, str]]:
        """Every row as ``{column: plain text}`` (nothing hoisted)."""
        return [{c.name: plain(v) for c, v in zip(self.columns, row)} for row in self.rows]

    def hoisted(self) -> tuple["Grid", list[tuple[str, str]]]:
        """A copy without the hoistable columns that are constant, and those (name, value)."""
        if len(self.rows) < 2:
            return self, []
        keep, constant = [], []
        for i, col in enumerate(self.columns):
            values = {plain(row[i]) for row in self.rows}
            if col.hoist and len(values) == 1:
                constant.append((col.name, values.pop()))
            else:
                keep.append(i)
        if not constant:
            return self, []
        grid = Grid(self.title, [self.columns[i] for i in keep], [[row[i] for i in keep] for row in self.rows])
        return grid, constant


def show(grid: Grid, console: Console, fmt: str = "table",
         records: Sequence[Mapping[str, Any]] | None = None) -> None:
    """Print ``grid`` as a rich table (terminal), plain aligned text (no terminal),
    CSV or JSON. ``records`` replaces the grid's cells for csv/json when the caller
    has the raw numbers (a DataFrame's rows)."""
    if fmt in ("csv", "json"):
        data = [dict(r) for r in records] if records is not None else grid.records()
        write_records(data, console.file, fmt, [c.name for c in grid.columns] if records is None else None)
        return
    grid, constant = grid.hoisted()
    if console.is_terminal:
        _rich(grid, constant, console)
    else:
        console.file.write(plain_text(grid, constant))
        console.file.flush()


def write_records(data: list[dict[str, Any]], out: TextIO, fmt: str, columns: Sequence[str] | None = None) -> None:
    """``data`` as CSV (a header, one line per record) or a JSON list of objects."""
    if fmt == "json":
        out.write(json.dumps([{k: _jsonable(v) for k, v in r.items()} for r in data], indent=2) + "\n")
        return
    names = list(columns) if columns is not None else list(dict.fromkeys(k for r in data for k in r))
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for r in data:
        writer.writerow({k: "" if _missing(v) else v for k, v in r.items()})
    out.flush()


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _jsonable(value: Any) -> Any:
    if _missing(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def header_line(constant: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{name}: {value}" for name, value in constant)


def plain_text(grid: Grid, constant: Sequence[tuple[str, str]] = ()) -> str:
    """Aligned columns separated by two spaces; no line is ever wrapped or cut."""
    lines = []
    if grid.title:
        lines.append(grid.title)
    if constant:
        lines.append(header_line(constant))
    cells = [[c.name for c in grid.columns]] + [[plain(v) for v in row] for row in grid.rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(grid.columns))]
    for k, row in enumerate(cells):
        parts = []
        for i, (col, text) in enumerate(zip(grid.columns, row)):
            last = i == len(row) - 1
            if col.justify == "right":
                parts.append(text.rjust(widths[i]))
            else:
                parts.append(text if last else text.ljust(widths[i]))
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


#: Narrowest a wrapping (prose) column may become in a rich table.
MIN_PROSE_WIDTH = 12


def _widths(grid: Grid) -> list[int]:
    return [max([len(col.name), *(len(plain(r[i])) for r in grid.rows)]) for i, col in enumerate(grid.columns)]


def _rich(grid: Grid, constant: Sequence[tuple[str, str]], console: Console) -> None:
    from rich.table import Table

    widths = _widths(grid)
    # Each column costs its text plus 3 (padding, border); a name never shrinks.
    needed = 1 + sum(3 + (min(w, MIN_PROSE_WIDTH) if col.wrap else w) for col, w in zip(grid.columns, widths))
    if needed > console.width:
        # Too narrow for the names: plain lines (the terminal may fold them; nothing is cut).
        console.file.write(plain_text(grid, constant))
        console.file.flush()
        return
    caption = header_line(constant) or None
    table = Table(title=grid.title or None, caption=caption, caption_justify="left")
    for i, col in enumerate(grid.columns):
        if col.wrap:
            table.add_column(col.name, justify=col.justify, overflow="fold")
        else:
            # The longest name sets the column's minimum: rich shrinks or wraps
            # columns to fit the terminal, and names must stay whole.
            table.add_column(col.name, justify=col.justify, no_wrap=True, min_width=widths[i])
    for row in grid.rows:
        table.add_row(*(v if isinstance(v, Text) else str(v) for v in row))
    console.print(table)


def say(console: Console, text: str) -> None:
    """One message, never wrapped at the console width (paths and commands stay whole)."""
    console.print(text, highlight=False, soft_wrap=True)


# -- progress of a sweep -----------------------------------------------------------


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
                 write: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self.total, self.start, self.done = total, start, start
        self.every, self.clock = every, clock
        self.write = write or (lambda line: print(line, flush=True))
        self.t0 = clock()
        self.last: float | None = None
        self.current = ""

    def eta(self) -> float:
        measured, elapsed = self.done - self.start, self.clock() - self.t0
        if measured <= 0:
            return math.nan
        return (self.total - self.done) * elapsed / measured

    def line(self) -> str:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (f"[{self.done}/{self.total}] {pct:3.0f}%  {self.current}  "
                f"elapsed {fmt_duration(self.clock() - self.t0)}  ETA {fmt_duration(self.eta())}")

    def update(self, label: str, advance: int = 0) -> None:
        self.current = label
        self.done = min(self.total, self.done + advance)
        now = self.clock()
        first = self.last is None
        if first or self.done >= self.total or now - self.last >= self.every:
            self.last = now
            self.write(self.line())


def hide_flag_metavars() -> None:
    """Show boolean flags as ``--quick``, not ``--quick <bool>``: typer's help prints
    a type for every option, which reads as if a flag took a value."""
    try:
        from typer.core import TyperOption
    except ImportError:  # pragma: no cover - another typer layout: keep its help as is
        return
    original = getattr(TyperOption, "display_type_rich", None)
    if original is None or getattr(original, "_convbench_flags", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) and getattr(self, "is_bool_flag", True):
            return None
        return original(self, ctx)

    display_type_rich._convbench_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
