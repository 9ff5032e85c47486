"""Running client coroutines for commands: one place maps failures to exit codes."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._output import ExitCode, fail, print_error_object

__all__ = ["ClientOptions", "check_url", "parse_headers", "run_client"]


@dataclass(frozen=True)
class ClientOptions:
    """How to reach a service: timeout, credentials, extra headers and TLS context."""

    timeout: float
    token: str | None = None
    token_header: str = "X-Api-Token"
    headers: Mapping[str, str] | None = None
    ssl_context: ssl.SSLContext | None = None

    def client(self, url: str) -> Any:
        """A :class:`~gemstone_aio.client.RemoteService` for ``url`` with these options."""
        from ..client import RemoteService

        return RemoteService(
            url,
            timeout=self.timeout,
            headers=self.headers,
            token=self.token,
            token_header=self.token_header,
            ssl_context=self.ssl_context,
        )


def check_url(url: str, what: str = "URL") -> None:
    """An absolute ``http(s)://host...`` URL, or a usage error naming it."""
    from yarl import URL

    try:
        parsed = URL(url)
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        fail(
            f"{what} {url!r} is not an http(s) URL such as http://127.0.0.1:8000/api",
            ExitCode.USAGE,
        )


def parse_headers(items: Sequence[str]) -> dict[str, str]:
    """``["NAME:VALUE", ...]`` to a dict; a malformed item is a usage error.

    Spaces around the name and the value are dropped.
    """
    headers: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition(":")
        if not sep or not key.strip() or any(c.isspace() for c in key.strip()):
            fail(f"--header {item!r}: expected NAME:VALUE, e.g. X-Trace:abc", ExitCode.USAGE)
        headers[key.strip()] = value.strip()
    return headers


def run_client(coro: Coroutine[Any, Any, ExitCode], *, exit_on_success: bool = True) -> None:
    """Run ``coro``; turn the client's expected failures into a message and an exit code.

    A JSON-RPC error object exits with 1 (code, message and data on stderr); no answer at
    all exits with 3; Ctrl-C exits with 130, quietly. Nothing expected prints a traceback.
    With ``exit_on_success`` false, an ``OK`` outcome returns instead of exiting.
    """
    import typer

    from ..errors import CalledServiceError, GemstoneTransportError

    try:
        code = asyncio.run(coro)
    except CalledServiceError as exc:
        print_error_object(exc.code, exc.message, exc.data, exc.url)
        raise typer.Exit(int(ExitCode.RPC_ERROR)) from None
    except GemstoneTransportError as exc:
        fail(str(exc), ExitCode.UNREACHABLE)
    except KeyboardInterrupt:
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    if code == ExitCode.OK and not exit_on_success:
        return
    raise typer.Exit(int(code))
