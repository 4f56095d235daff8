"""The typer application, its consoles, and how a command fails.

Bad input ends with a one-paragraph message and exit status 2. The library
words its messages about values; a command adds the option's name when it
catches one (:func:`option_error`).
"""

from __future__ import annotations

from typing import NoReturn

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

PluginOption = typer.Option(
    None, "--plugin", "-p", help="Plugin module or .py file registering algorithms (repeatable)."
)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-paragraph error and exit (status 2 = bad input)."""
    from rich.markup import escape

    # escaped: a message may hold brackets that are not markup (pip install -e ".[dask]")
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def option_error(flag: str, exc: Exception) -> NoReturn:
    """Fail with a library message about a value, prefixed by the option that gave it."""
    fail(f"{flag} {exc}")


def load_plugins(plugins: list[str] | None) -> None:
    """Load ``--plugin`` targets (files relative to the current folder); a broken plugin is a clear error."""
    from pathlib import Path

    from ..registry import PluginError, load_plugin, plugin_target

    for target in plugins or []:
        try:
            load_plugin(plugin_target(target, Path.cwd()))
        except PluginError as exc:
            fail(str(exc))
