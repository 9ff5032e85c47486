"""The ``gemstone`` command line."""

from __future__ import annotations

import typer

from ._version import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="gemstone",
    help="Work with gemstone-aio services: call them, run them, inspect them.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gemstone-aio {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Work with gemstone-aio services: call them, run them, inspect them."""


def main() -> None:
    """Run the ``gemstone`` command (the console-script entry point)."""
    app()
