"""The typer application, its consoles, and how a command fails.

Bad input ends with a one-paragraph message and exit status 2. The library
words its messages about values; a command adds the option's name when it
catches one (:func:`option_error`).
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console


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


hide_flag_metavars()
app = typer.Typer(
    name="convbench",
    help="Benchmark convolution algorithms against each other, with every answer checked.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)

PluginOption = typer.Option(
    None, "--plugin", "-p", help="Plugin module or .py file registering algorithms (repeatable)."
)
AllowConfigPluginsOption = typer.Option(
    False, "--allow-config-plugins",
    help="Load the plugins the config (or the resumed folder's config.yaml) names: code that runs as you. "
         "Without it a config with plugins is refused, listing them.",
)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-paragraph error and exit (status 2 = bad input)."""
    from rich.markup import escape

    # escaped: messages quote user input and pip extras like convbench[parquet]
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def option_error(flag: str, exc: Exception) -> NoReturn:
    """Fail with a library message about a value, prefixed by the option that gave it."""
    fail(f"{flag} {exc}")


FormatOption = typer.Option("table", "--format", "-f", help="table (plain text when not a terminal), csv or json.")


def output_format(fmt: str) -> str:
    """``--format`` checked: table, csv or json (exit 2 otherwise)."""
    from .options import parse_format

    try:
        return parse_format(fmt)
    except ValueError as exc:
        fail(str(exc))


def run_folder(folder: str) -> str:
    """A results folder; ``results/<config>`` (a folder of runs) means its newest run, said on stderr."""
    from ..results.latest import newest_run, runs_in

    newest = newest_run(folder)
    if newest is None:
        return folder
    n = len(runs_in(folder))
    err_console.print(f"{folder} holds {n} run{'s' if n != 1 else ''}; using the newest: {newest}",
                      highlight=False, soft_wrap=True)
    return str(newest)


def load_plugins(plugins: list[str] | None) -> None:
    """Load ``--plugin`` targets (files relative to the current folder); a broken plugin is a clear error."""
    from pathlib import Path

    from ..registry import PluginError, load_plugin, plugin_target

    for target in plugins or []:
        try:
            load_plugin(plugin_target(target, Path.cwd()))
        except PluginError as exc:
            fail(str(exc))
