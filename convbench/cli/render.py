"""How the command line shows tables and progress, on a terminal and off it.

On a terminal a table is a rich table; piped or redirected (``| grep``,
``| tee``, CI logs) it is plain text, one line per row, never wrapped, so
names stay whole for ``grep`` and copy-paste. ``--format csv|json`` gives
the same rows for programs. In every mode:

- identifiers (algorithm and layer names) are never truncated or wrapped;
- columns whose value is the same on every row (dtype, threads ...) move to
  one header line (``dtype: float32, threads: 1``) instead of taking width.

The tables of each command are built here too, from library data
(:func:`algorithms_table`, :func:`run_summary`, ...), as :class:`Grid`
objects that :func:`show` renders in any of those modes; ``info`` and
``doctor``'s are in :mod:`.render_machine`.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence, TextIO

from rich.console import Console
from rich.text import Text

from ..quant import QUANT_DTYPES


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
    caption: str = ""  # a line under the table

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
        grid = Grid(self.title, [self.columns[i] for i in keep], [[row[i] for i in keep] for row in self.rows],
                    self.caption)
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
    caption = "\n".join(c for c in (header_line(constant), grid.caption) if c) or None
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


# -- the tables of the commands -----------------------------------------------------

#: Columns that move to a header line when every row has the same value.
HOIST = ("layout", "dtype", "threads", "cache")


def print_table(table: Grid, fmt: str = "table", records: Sequence[Mapping[str, Any]] | None = None) -> None:
    """A command's table on stdout: rich (terminal), plain unwrapped text (piped), CSV or JSON."""
    from .app import console

    show(table, console, fmt, records)


def fmt_time(seconds: Any) -> str:
    if seconds is None or seconds != seconds:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt(value: Any, spec: str = ".3g", empty: str = "-") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return empty
    return format(value, spec)


def _table(title: str, columns: tuple[str, ...], left: tuple[str, ...]) -> Grid:
    table = Grid(title=title)
    for col in columns:
        table.add_column(col, "left" if col in left else "right", hoist=col in HOIST)
    return table


def algorithms_table(rows: list[dict[str, str]]) -> Grid:
    table = Grid(title="convbench algorithms")
    for column in ("name", "description", "natural layout", "dtypes", "constraints", "float32 tol", "library", "source"):
        # names whole; only the prose columns may fold on a narrow terminal
        table.add_column(column, wrap=column in ("description", "constraints", "source"))
    for r in rows:
        table.add_row(*r.values())
    return table


def verify_table() -> Grid:
    return _table("convbench verify: every algorithm against the float64 reference (8-bit: the exact one, in LSB)",
                  ("algorithm", "cases", "passed", "skipped", "failed", "worst error"), ("algorithm",))


def _rate(df: Any) -> str:
    """A rate column's header: GFLOP/s, GOP/s for 8-bit rows, or both named when the rows mix."""
    from ..plots._common import rate_unit

    return rate_unit(df["dtype"].astype(str).unique() if "dtype" in df else [])


def run_summary(best: Any, totals: Any) -> None:
    """The best algorithm per layer and the network totals at the end of a run."""
    if len(best):
        table = _table("best algorithm per layer",
                       ("layer", "layout", "dtype", "threads", "cache", "best", "median", _rate(best), "vs baseline"),
                       ("layer", "best"))
        for r in best.itertuples():
            table.add_row(r.layer, r.layout, r.dtype, str(r.threads), r.cache, r.algorithm, fmt_time(r.time_median_s),
                          fmt(r.gflops, ".1f"), fmt(r.speedup_vs_baseline, ".2f") + "x")
        print_table(table)
    if len(totals):
        table = _table("network total per algorithm (sum of count x median)",
                       ("algorithm", "layout", "dtype", "threads", "cache", "total", _rate(totals), "layers ok"),
                       ("algorithm",))
        # complete totals first, fastest first; partial ones (layers left out) after, never ranked above
        order = totals.assign(partial=~totals["complete"].astype(bool))
        for r in order.sort_values(["layout", "dtype", "threads", "cache", "partial", "total_s"]).itertuples():
            total = fmt_time(r.total_s) if r.complete else f"[dim]({fmt_time(r.total_s)}, partial)[/]"
            table.add_row(r.algorithm, r.layout, r.dtype, str(r.threads), r.cache, total,
                          fmt(r.gflops, ".1f"), f"{r.layers_ok}/{r.layers}")
        print_table(table)


def layers_table(name: str, n_layers: int, algorithms: list[str], rows: list[dict[str, Any]],
                 not_loaded: list[str] | None = None) -> Grid:
    """The layer table; ``not_loaded`` algorithms (of a config's plugins, never run to look) say so."""
    not_loaded = not_loaded or []
    quantized = {r["dtype"] in QUANT_DTYPES for r in rows}
    # 8-bit layers count integer operations: never labelled FLOP, and a mixed table says which is which
    work = "MFLOP" if quantized <= {False} else "MOP" if quantized == {True} else "MFLOP (MOP if u8s8)"
    table = _table(f"{name}: {n_layers} layers, workspace in KiB (- = unsupported, ? = unknown)",
                   ("layer", "class", "count", "shape", work, *algorithms, *not_loaded), ("layer", "class", "shape"))
    for r in rows:
        ws = ["?" if b == "unknown" else fmt(None if b is None else b / 1024, ".1f")
              for b in r["workspace_bytes"].values()]
        table.add_row(r["layer"], r["layer_class"], str(r["count"]), r["description"], f"{r['flops'] / 1e6:.1f}", *ws,
                      *["not loaded"] * len(not_loaded))
    return table


#: Rows a per-case table prints before it points to the CSV instead (a terminal of thousands
#: of rows is unreadable, and rendering it took longer than computing it).
MAX_TABLE_ROWS = 60


def more_rows(n_rows: int, where: str) -> str | None:
    """The line that replaces the rows past :data:`MAX_TABLE_ROWS` (None when all were listed)."""
    return f"... and {n_rows - MAX_TABLE_ROWS} more rows: {where}" if n_rows > MAX_TABLE_ROWS else None


def compare_table(shown: Any, title: str) -> Grid:
    table = _table(title, ("layer", "algorithm", "layout", "dtype", "threads", "A median", "B median",
                           "B/A [95% CI]", "spread A/B", "verdict"), ("layer", "algorithm", "verdict"))
    style = {"slower": "red", "broken": "bold red", "faster": "green", "fixed": "green"}
    for r in shown.to_dict("records"):
        ratio = "-" if r["ratio"] != r["ratio"] else f"{r['ratio']:.3f} [{fmt(r['ci_low'], '.3f')}, {fmt(r['ci_high'], '.3f')}]"
        verdict = r["verdict"] if r["verdict"] not in style else f"[{style[r['verdict']]}]{r['verdict']}[/]"
        verdict += " (contended)" if r.get("contended") else ""
        table.add_row(str(r["layer"]), r["algorithm"], r["layout"], r["dtype"], str(r["threads"]),
                      fmt_time(r["time_a_s"]), fmt_time(r["time_b_s"]), ratio,
                      f"{fmt(r['spread_a'], '.0%')}/{fmt(r['spread_b'], '.0%')}", verdict)
    return table


def winners_table(winners: Any) -> Grid:
    """The fastest algorithm per layer variant on each machine; the rows where machines differ first."""
    machines = [c for c in winners.columns if c not in ("layer", "layout", "dtype", "threads", "agree")]
    table = _table("fastest algorithm per layer on each machine (yellow: the machines differ)",
                   ("layer", "layout", "dtype", "threads", *machines), ("layer", *machines))
    for r in winners.sort_values("agree", kind="stable").to_dict("records"):
        cells = [str(r[m]) if isinstance(r[m], str) and r[m] else "-" for m in machines]
        table.add_row(str(r["layer"]), r["layout"], r["dtype"], str(r["threads"]),
                      *[c if r["agree"] else f"[yellow]{c}[/]" for c in cells])
    return table


def selection_tables(selection: Any, network: Any) -> tuple[Grid, Grid]:
    table = _table("best algorithm per layer (fastest ok case within its error tolerance)",
                   ("layer", "layout", "dtype", "threads", "best", "median", _rate(selection), "runner-up", "margin"),
                   ("layer", "best", "runner-up"))
    for r in selection.head(MAX_TABLE_ROWS).to_dict("records"):
        margin = "-" if r["margin"] != r["margin"] else f"x{r['margin']:.2f}" + ("" if r["clear_winner"] else " (tie)")
        table.add_row(str(r["layer"]), r["layout"], r["dtype"], str(r["threads"]), r["algorithm"] or "[red]none ok[/]",
                      fmt_time(r["time_median_s"]), fmt(r["gflops"], ".1f"), r["runner_up"] or "-", margin)
    net = _table("network time (sum of count x median): best per layer vs one algorithm everywhere",
                 ("choice", "layout", "dtype", "threads", "total", "vs best", "layers ok"), ("choice",))
    for r in network.to_dict("records"):
        vs = fmt(r["vs_best"], ".2f") + "x" if r["vs_best"] == r["vs_best"] else ("-" if r["complete"] else "incomplete")
        net.add_row(r["choice"], r["layout"], r["dtype"], str(r["threads"]), fmt_time(r["total_s"]), vs,
                    f"{r['layers_ok']}/{r['layers']}")
    return table, net


def versus_peers_table(layers: Any, network: Any) -> Grid:
    """select's table of the best convbench algorithm against the best peer, per layer then per network."""
    from ..analysis.peers import fmt_ratio

    table = _table("convbench vs production peers: peer time / best convbench time (>1: convbench faster), 95% CI",
                   ("layer", "layout", "dtype", "threads", "convbench", "peer", "ratio [95% CI]", "verdict"),
                   ("layer", "layout", "dtype", "convbench", "peer", "verdict"))
    for r in layers.to_dict("records"):
        ours = f"{r['convbench']} ({r['convbench_impl']})" if r["convbench"] else "[red]none ok[/]"
        theirs = f"{r['peer']} ({r['peer_impl']})" if r["peer"] else "[red]none ok[/]"
        table.add_row(str(r["layer"]), r["layout"], r["dtype"], str(r["threads"]), ours, theirs,
                      fmt_ratio(r["ratio"], r["ci_low"], r["ci_high"]), r["verdict"] or "-")
    for r in network.to_dict("records"):
        table.add_row("[bold]network[/]", r["layout"], r["dtype"], str(r["threads"]),
                      fmt_time(r["convbench_total_s"]), fmt_time(r["peer_total_s"]),
                      fmt_ratio(r["ratio"], r["ci_low"], r["ci_high"]), f"{r['layers_compared']}/{r['layers']} layers")
    return table
