"""The ``convbench`` command line: a thin typer layer over the library.

One function per subcommand; each parses arguments, calls library code and
prints. Bad input ends with a one-paragraph message and exit status 2.
"""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="convbench",
    help="Benchmark convolution algorithms against each other, with every answer checked.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print a one-paragraph error and exit (status 2 = bad input)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


PluginOption = typer.Option(
    None, "--plugin", "-p", help="Plugin module or .py file registering algorithms (repeatable)."
)


def load_plugins(plugins: list[str] | None) -> None:
    """Load ``--plugin`` targets; a broken plugin is a clear error, not a traceback."""
    from .registry import PluginError, load_plugin

    for target in plugins or []:
        try:
            load_plugin(target)
        except PluginError as exc:
            fail(str(exc))


def resolve_algorithms(names: list[str] | None) -> list[str]:
    """Validated algorithm names (all registered ones when ``names`` is empty)."""
    from .registry import list_algorithms

    known = list_algorithms()
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        fail(f"Unknown algorithm{plural} {', '.join(map(repr, unknown))}. Known algorithms: {', '.join(known)}.")
    return list(names) if names else known


@app.command("list")
def list_cmd(plugin: list[str] = PluginOption) -> None:
    """List every registered algorithm with its description, layout and constraints."""
    from rich.table import Table

    from .registry import get_algorithm, list_algorithms, source_of

    load_plugins(plugin)
    table = Table(title="convbench algorithms")
    for column in ("name", "description", "natural layout", "constraints", "float32 tol", "source"):
        table.add_column(column, overflow="fold")
    for name in list_algorithms():
        algo = get_algorithm(name)
        table.add_row(
            name, algo.description, algo.natural_layout or "both", algo.constraints,
            f"{algo.tolerance_for('float32'):.0e}", source_of(name),
        )
    console.print(table)


@app.command()
def verify(
    algorithm: list[str] = typer.Option(None, "--algorithm", "-a", help="Algorithm to check (repeatable; default all)."),
    plugin: list[str] = PluginOption,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print every failed or errored case."),
) -> None:
    """Run the correctness battery (convbench.testing) and print a table; exit 1 on any failure."""
    from rich.table import Table

    from .testing import check_algorithm

    load_plugins(plugin)
    names = resolve_algorithms(algorithm)
    table = Table(title="convbench verify: every algorithm against the float64 reference")
    for column in ("algorithm", "cases", "passed", "skipped", "failed", "worst error"):
        table.add_column(column, justify="right" if column != "algorithm" else "left")
    any_bad = False
    for name in names:
        with console.status(f"checking {name} ..."):
            results = check_algorithm(name)
        counts = {s: sum(r.status == s for r in results) for s in ("passed", "skipped", "failed", "error")}
        errors = [r.error for r in results if r.error is not None]
        bad = [r for r in results if r.status in ("failed", "error")]
        any_bad |= bool(bad)
        table.add_row(
            name, str(len(results)), str(counts["passed"]), str(counts["skipped"]),
            f"[red]{len(bad)}[/]" if bad else "0",
            f"{max(errors):.1e}" if errors else "-",
        )
        for r in bad if verbose else bad[:3]:
            err_console.print(f"[red]{r.status}[/] {name} {r.check} {r.spec_id}: {r.message}", highlight=False)
    console.print(table)
    if any_bad:
        raise typer.Exit(1)


@app.command("new-plugin")
def new_plugin(
    name: str = typer.Argument(..., help="Algorithm name, e.g. my-algo."),
    out: str = typer.Option(None, "--out", "-o", help="File or folder to write (default ./<name>.py)."),
) -> None:
    """Write a commented, working plugin skeleton that passes `convbench verify` as is."""
    from pathlib import Path

    from .scaffold import write_plugin_skeleton

    try:
        path = write_plugin_skeleton(name, Path(out) if out else None)
    except (ValueError, FileExistsError, OSError) as exc:
        fail(str(exc))
    console.print(f"wrote {path}\nnext: convbench verify --plugin {path} -a {name}", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
