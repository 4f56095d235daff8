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


if __name__ == "__main__":  # pragma: no cover
    app()
