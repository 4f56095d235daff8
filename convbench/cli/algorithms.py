"""``convbench list``, ``verify`` and ``new-plugin``: the registered algorithms and writing new ones."""

from __future__ import annotations

import os

import typer

from .app import FormatOption, PluginOption, app, console, err_console, fail, load_plugins, output_format


@app.command("list")
def list_cmd(plugin: list[str] = PluginOption, fmt: str = FormatOption) -> None:
    """List every registered algorithm with its description, layout, dtypes and constraints."""
    from ..registry import get_algorithm, list_algorithms, source_of
    from .render import algorithms_table, print_table

    fmt = output_format(fmt)
    load_plugins(plugin)
    rows = []
    for name in list_algorithms():
        algo = get_algorithm(name)
        library = algo.library_version() if callable(getattr(algo, "library_version", None)) else None
        if getattr(algo, "peer", False):  # the name stays the one -a takes; the library column says "peer"
            library = f"peer: {library or 'version unknown'}"
        rows.append({"name": name,
                     "description": algo.description, "layout": algo.natural_layout or "both",
                     "dtypes": ", ".join(getattr(algo, "dtypes", ("float32", "float64"))),
                     "constraints": algo.constraints, "tol": f"{algo.tolerance_for('float32'):.0e}",
                     "library": library or "", "source": source_of(name)})
    print_table(algorithms_table(rows), fmt)


@app.command()
def verify(
    algorithm: list[str] = typer.Option(None, "--algorithm", "-a", help="Algorithm to check (repeatable; default all)."),
    plugin: list[str] = PluginOption,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print every failed or errored case."),
    boundscheck: bool = typer.Option(
        False, "--boundscheck",
        help="Compile every numba kernel with bounds checks (a read outside an array is an "
             "IndexError, not garbage): reruns in a fresh process with NUMBA_BOUNDSCHECK=1 "
             "and its own numba cache. Slower.",
    ),
) -> None:
    """Run the correctness battery (convbench.testing) and print a table; exit 1 on any failure."""
    from pathlib import Path

    from ..registry import plugin_target, require_algorithms
    from ..testing import check_algorithm
    from .render import print_table, say, verify_table

    if boundscheck and os.environ.get("NUMBA_BOUNDSCHECK") != "1":
        args = ["verify", "--boundscheck", *(["-v"] if verbose else [])]
        args += [a for name in algorithm or [] for a in ("-a", name)]
        args += [a for target in plugin or [] for a in ("--plugin", plugin_target(target, Path.cwd()))]
        raise typer.Exit(_rerun_bounds_checked(args))
    load_plugins(plugin)
    try:
        names = require_algorithms(algorithm or None)
    except ValueError as exc:
        fail(str(exc))
    table = verify_table()
    if boundscheck:
        table.title += " (numba bounds-checked)"
    any_bad = False
    for name in names:
        with console.status(f"checking {name} ..."):
            results = check_algorithm(name)
        counts = {s: sum(r.status == s for r in results) for s in ("passed", "skipped", "failed", "error")}
        worst: dict[str, float] = {}  # by unit: relative (float specs), LSB (8-bit ones)
        for r in results:
            if r.error is not None:
                worst[r.unit] = max(worst.get(r.unit, 0.0), r.error)
        bad = [r for r in results if r.status in ("failed", "error")]
        any_bad |= bool(bad)
        table.add_row(
            name, str(len(results)), str(counts["passed"]), str(counts["skipped"]),
            f"[red]{len(bad)}[/]" if bad else "0",
            "; ".join(f"{v:g} LSB" if u == "LSB" else f"{v:.1e}" for u, v in worst.items()) or "-",
        )
        for r in bad if verbose else bad[:3]:
            say(err_console, f"[red]{r.status}[/] {name} {r.check} {r.spec_id}: {r.message}")
    print_table(table)
    if any_bad:
        raise typer.Exit(1)


def _rerun_bounds_checked(args: list[str]) -> int:
    """Run ``convbench ARGS`` in a new process whose numba compiles with bounds
    checks, and return its exit status. numba reads NUMBA_BOUNDSCHECK once, at
    import, and its on-disk cache does not key code by it: the child gets a
    cache folder of its own, which only ever holds bounds-checked code."""
    import subprocess
    import sys
    from pathlib import Path

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "convbench" / "numba-boundscheck"
    # the child imports this very convbench, wherever the parent found it
    root = str(Path(__file__).resolve().parents[2])  # convbench/cli/algorithms.py -> the root
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, "-m", "convbench.cli", *args], env=env,
                          capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc.returncode


@app.command("new-plugin")
def new_plugin(
    name: str = typer.Argument(..., help="Algorithm name, e.g. my-algo."),
    out: str = typer.Option(None, "--out", "-o", help="File or folder to write (default ./<name>.py)."),
) -> None:
    """Write a commented, working plugin skeleton that passes `convbench verify` as is."""
    import shlex
    from pathlib import Path

    from ..scaffold import write_plugin_skeleton
    from .render import say

    try:
        path = write_plugin_skeleton(name, Path(out) if out else None)
    except (ValueError, FileExistsError, OSError) as exc:
        fail(str(exc))
    # `path` is as the user gave it (or ./NAME.py): relative to this folder, so the
    # command works where it is printed; one unwrapped line so it copies whole.
    say(console, f"wrote {path}")
    say(console, f"next: convbench verify --plugin {shlex.quote(str(path))} -a {shlex.quote(name)}")
