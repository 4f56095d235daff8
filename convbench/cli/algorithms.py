"""``convbench list``, ``verify`` and ``new-plugin``: the registered algorithms and writing new ones."""

from __future__ import annotations

import typer

from .app import PluginOption, app, console, err_console, fail, load_plugins


@app.command("list")
def list_cmd(plugin: list[str] = PluginOption) -> None:
    """List every registered algorithm with its description, layout and constraints."""
    from ..registry import get_algorithm, list_algorithms, source_of
    from .render import algorithms_table

    load_plugins(plugin)
    rows = []
    for name in list_algorithms():
        algo = get_algorithm(name)
        rows.append({"name": name, "description": algo.description, "layout": algo.natural_layout or "both",
                     "constraints": algo.constraints, "tol": f"{algo.tolerance_for('float32'):.0e}",
                     "source": source_of(name)})
    console.print(algorithms_table(rows))


@app.command()
def verify(
    algorithm: list[str] = typer.Option(None, "--algorithm", "-a", help="Algorithm to check (repeatable; default all)."),
    plugin: list[str] = PluginOption,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print every failed or errored case."),
) -> None:
    """Run the correctness battery (convbench.testing) and print a table; exit 1 on any failure."""
    from ..registry import require_algorithms
    from ..testing import check_algorithm
    from .render import verify_table

    load_plugins(plugin)
    try:
        names = require_algorithms(algorithm or None)
    except ValueError as exc:
        fail(str(exc))
    table = verify_table()
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

    from ..scaffold import write_plugin_skeleton

    try:
        path = write_plugin_skeleton(name, Path(out) if out else None)
    except (ValueError, FileExistsError, OSError) as exc:
        fail(str(exc))
    console.print(f"wrote {path}\nnext: convbench verify --plugin {path} -a {name}", highlight=False)
