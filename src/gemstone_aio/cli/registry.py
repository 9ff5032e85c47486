"""``gemstone registry``: run the reference service registry (``gemstone_aio.registry``)."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from .output import ExitCode, fail

__all__ = ["registry"]


def registry(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free port).")] = 8000,
    expiry: Annotated[
        float | None,
        typer.Option(
            "--expiry",
            help="Seconds after its last ping that an instance is forgotten.",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Require this API token (X-Api-Token) on ping and unregister.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the reference service registry until Ctrl-C or SIGTERM.

    Services ping it (service_registry_urls) and find each other through it.

    Example:
        gemstone registry --host 127.0.0.1 --port 8000 --expiry 90
    """
    from .run import serve_target

    try:
        importlib.import_module("gemstone_aio.registry")
    except ImportError:
        fail(
            "the reference registry (gemstone_aio.registry) is not part of this installation",
            ExitCode.USAGE,
        )
    extra = [
        *(["--expiry", str(expiry)] if expiry is not None else []),
        *(["--token", token] if token is not None else []),
    ]
    serve_target("gemstone_aio.registry", host, port, extra)
