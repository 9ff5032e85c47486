"""The typer application: the root options and the list of commands."""

from __future__ import annotations

import typer

from .._version import __version__
from ._call import call, call_raw
from ._dead_letters import dead_letters
from ._discover import describe
from ._events import emit, listen
from ._flags import PlainFlagsGroup
from ._new import new
from ._output import ExitCode
from ._registry import registry
from ._run import run
from ._shell import shell
from ._typed_client import client

__all__ = ["app", "main"]

EPILOG = (
    "Exit codes: 0 ok, 1 the service answered a JSON-RPC error, 2 usage error, "
    "3 no answer (connection, timeout, broker), 4 no service matches the name, "
    "130 interrupted."
)

app = typer.Typer(
    name="gemstone",
    help="Work with gemstone-aio services: call them, run them, inspect them.",
    epilog=EPILOG,
    no_args_is_help=True,
    cls=PlainFlagsGroup,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
"""The ``gemstone`` typer application (its commands are added below)."""


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


app.command("call", epilog=EPILOG)(call)
app.command("call-raw", epilog=EPILOG)(call_raw)
app.command("call_raw", hidden=True, epilog=EPILOG)(call_raw)  # gemstone 0.10's spelling
app.command("describe", epilog=EPILOG)(describe)
app.command("client", epilog=EPILOG)(client)
app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(run)
app.command("registry")(registry)
app.command("new")(new)
app.command("emit", epilog=EPILOG)(emit)
app.command("listen", epilog=EPILOG)(listen)
app.add_typer(dead_letters, name="dead-letters", epilog=EPILOG)
app.command("shell", epilog=EPILOG)(shell)


def main() -> None:
    """Run the ``gemstone`` command (the console-script entry point).

    Ctrl-C exits with 130 and no message, wherever it comes.
    """
    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(int(ExitCode.INTERRUPTED)) from None
