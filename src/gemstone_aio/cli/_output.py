"""Printing results and errors, and the exit codes of the ``gemstone`` command."""

from __future__ import annotations

import enum
import json
import sys
from typing import Any, NoReturn

import typer

__all__ = ["ExitCode", "dumps", "fail", "print_error_object", "stderr", "stdout"]


class ExitCode(enum.IntEnum):
    """The exit codes of every ``gemstone`` command (documented in docs/cli.md)."""

    OK = 0
    """Success."""
    RPC_ERROR = 1
    """The service answered with a JSON-RPC error object (printed on stderr)."""
    USAGE = 2
    """Bad command line: unknown option, malformed PARAMS, a target that cannot be loaded."""
    UNREACHABLE = 3
    """No answer: connection refused, timeout, HTTP error, a reply that is not JSON-RPC,
    a broker that cannot be reached."""
    NOT_FOUND = 4
    """The registry knows no live service matching the name."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C."""


def _console(err: bool) -> Any:
    from rich.console import Console

    return Console(stderr=err, highlight=False, soft_wrap=True)


def stdout() -> Any:
    """A rich console on stdout."""
    return _console(False)


def stderr() -> Any:
    """A rich console on stderr."""
    return _console(True)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """JSON text of ``value`` (non-ASCII kept as is; unknown objects as their ``str``)."""
    return json.dumps(value, ensure_ascii=False, indent=indent, default=str)


def fail(message: str, code: ExitCode) -> NoReturn:
    """Print ``error: message`` (one line) on stderr and exit with ``code``."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    raise typer.Exit(int(code))


def print_error_object(code: int, message: str, data: Any, url: str | None) -> None:
    """Print a JSON-RPC error object on stderr: code, message, then data (if any)."""
    where = f" from {url}" if url else ""
    lines = [f"error: JSON-RPC error {code}{where}: {message}"]
    if data is not None:
        lines.append(f"data: {dumps(data, indent=2)}")
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
