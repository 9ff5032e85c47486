"""The options every command that talks to a service shares: credentials, headers, timeout."""

from __future__ import annotations

from typing import Annotated

import typer

from ._client import ClientOptions, parse_headers
from ._output import ExitCode, fail

__all__ = [
    "BearerOpt",
    "HeaderOpt",
    "TimeoutOpt",
    "TokenHeaderOpt",
    "TokenOpt",
    "client_options",
]

TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="API token for private methods (sent in --token-header).",
        show_default=False,
    ),
]
TokenHeaderOpt = Annotated[
    str, typer.Option("--token-header", help="The header that carries --token.")
]
BearerOpt = Annotated[
    str | None,
    typer.Option(
        "--bearer",
        help="Send 'Authorization: Bearer TOKEN' (services using a bearer strategy).",
        show_default=False,
    ),
]
HeaderOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--header",
        "-H",
        help="An extra HTTP header NAME:VALUE (repeatable).",
        show_default=False,
    ),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for each answer.")]


def client_options(
    token: str | None,
    token_header: str,
    header: list[str] | None,
    bearer: str | None,
    timeout: float,
) -> ClientOptions:
    """Check the shared options and turn them into :class:`ClientOptions`."""
    if timeout <= 0:
        fail(f"--timeout must be positive, got {timeout}", ExitCode.USAGE)
    headers = parse_headers(header or [])
    if bearer is not None:
        if not bearer.strip():
            fail("--bearer needs a token", ExitCode.USAGE)
        headers["Authorization"] = f"Bearer {bearer.strip()}"
    return ClientOptions(timeout, token, token_header, headers)
