"""What the protocol-layer tests share: method tables, routers and calls made as the server makes them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from gemstone_aio.protocol import (
    BlockingRunner,
    CallContext,
    MethodEntry,
    Router,
    collect_exposed,
    current_call,
    get_method_spec,
)

WAIT = 10.0
"""The longest a test waits for something that should happen (an event, a task)."""

LOGGER = "tests.protocol.router"
"""The logger of the routers under test."""


def method_table(*funcs: Callable[..., Any], owner: Any = None) -> dict[str, MethodEntry]:
    """Return the router's table of the exposed functions (or bound methods) ``funcs``."""
    table: dict[str, MethodEntry] = {}
    for func in funcs:
        spec = get_method_spec(func)
        assert spec is not None, f"{func!r} is not exposed"
        table[spec.name] = MethodEntry.create(spec, func, owner)
    return table


def methods_of(owner: object) -> dict[str, MethodEntry]:
    """Return the table of every exposed method of ``owner`` (bound to it)."""
    attrs = collect_exposed(type(owner)).values()
    return method_table(*(getattr(owner, attr) for attr in attrs), owner=owner)


def make_router(
    methods: dict[str, MethodEntry],
    runner: BlockingRunner,
    *,
    logger: str = LOGGER,
    **options: Any,
) -> Router:
    """Build a router over ``methods`` whose blocking methods run in ``runner``."""
    return Router(methods, run_blocking=runner.run, logger=logging.getLogger(logger), **options)


def encode(body: Any) -> bytes:
    """Return ``body`` as the bytes of an HTTP body (bytes and str are taken as they are)."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


async def call(router: Router, body: Any, context: CallContext | None = None) -> Any:
    """Answer ``body`` as the server's endpoint does and decode the answer (``None``: none).

    As in the endpoint, ``context`` is the current call while the router runs.
    """
    context = CallContext() if context is None else context
    token = current_call.set(context)
    try:
        answer = await router.handle(encode(body), context)
    finally:
        current_call.reset(token)
    return None if answer is None else json.loads(answer)


async def turns(count: int = 10) -> None:
    """Let the loop run ``count`` times (ready callbacks and tasks), without waiting on time."""
    for _ in range(count):
        await asyncio.sleep(0)


def request(method: str, params: Any = None, id: Any = 1, *, notification: bool = False) -> Any:
    """Build a JSON-RPC request object (``params`` omitted when ``None``)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if not notification:
        message["id"] = id
    return message
