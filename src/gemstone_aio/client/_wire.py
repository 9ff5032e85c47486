"""Request building shared by single calls and batches."""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["make_message", "make_params", "next_id"]

next_id = itertools.count(1).__next__
"""Return a fresh request id (process-wide, so ids never repeat within a batch)."""


def make_params(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any] | dict[str, Any] | None:
    """Turn call arguments into JSON-RPC params (a list, a dict, or none).

    Raises:
        TypeError: Both positional and keyword arguments were given.
    """
    if args and kwargs:
        raise TypeError("JSON-RPC params go either by position or by name, not both")
    if kwargs:
        return kwargs
    if args:
        return list(args)
    return None


def make_message(
    method: str, params: list[Any] | dict[str, Any] | None, request_id: int | None
) -> dict[str, Any]:
    """Build a request object; ``request_id=None`` makes a notification (no ``id``)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if request_id is not None:
        message["id"] = request_id
    return message
