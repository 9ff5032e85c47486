"""The listening socket, with a bound on open connections.

aiohttp's sites have no such bound, so the service listens itself with
``loop.create_server`` and aiohttp's public protocol factory (``AppRunner.server``): past
``max_connections`` open connections a new one is closed at once (counted, and logged
once per overload episode, not once per connection). Slow clients are handled by
aiohttp's own keep-alive timer (``keepalive_timeout``: a connection that has not sent a
complete request in that time is closed, whether it is idle or trickling headers) and
by the endpoint's body read deadline.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from typing import Final

from aiohttp import web

__all__ = ["CONNECTIONS_KEY", "ConnectionGuard", "effective_max_connections", "listen"]

FD_HEADROOM: Final = 64
"""File descriptors kept free beside the connections (log files, outgoing calls, the broker)."""


def effective_max_connections(configured: int, logger: logging.Logger) -> int:
    """The connection bound, lowered to fit the process's file-descriptor limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and configured > soft - FD_HEADROOM:
        lowered = max(1, soft - FD_HEADROOM)
        logger.warning(
            "max_connections=%d does not fit the open-file limit of %d: using %d "
            "(raise the limit with 'ulimit -n' to allow more)",
            configured,
            soft,
            lowered,
        )
        return lowered
    return configured


class _Refused(asyncio.Protocol):
    """Closes a connection over the bound as soon as it is made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class ConnectionGuard:
    """The protocol factory of the listening socket: aiohttp's, within ``limit`` connections.

    Attributes:
        limit: The most connections open at once.
        refused: Connections closed at once because ``limit`` were open.
    """

    def __init__(self, limit: int, logger: logging.Logger) -> None:
        self._server: web.Server | None = None
        self.limit = limit
        self._logger = logger
        self._overloaded = False
        self.refused = 0

    def attach(self, server: web.Server) -> None:
        """Hand connections to ``server`` (the runner's, once it is set up)."""
        self._server = server

    @property
    def open(self) -> int:
        """Connections open right now."""
        return 0 if self._server is None else len(self._server.connections)

    def __call__(self) -> asyncio.Protocol:
        if self._server is None:
            raise RuntimeError("ConnectionGuard used before attach()")
        if len(self._server.connections) >= self.limit:
            self.refused += 1
            if not self._overloaded:
                self._overloaded = True
                self._logger.warning(
                    "%d connections are open (max_connections): closing new ones until some close",
                    self.limit,
                )
            return _Refused()
        if self._overloaded:
            self._overloaded = False
            self._logger.info(
                "connections below max_connections again (%d refused meanwhile)", self.refused
            )
        return self._server()


async def listen(
    factory: Callable[[], asyncio.Protocol], host: str, port: int, *, reuse_port: bool = False
) -> asyncio.Server:
    """Listen on ``host:port`` (``port`` 0: a free one) with ``factory``'s protocols.

    ``reuse_port``: share the port with the other worker processes (``SO_REUSEPORT``).
    """
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        factory, host or None, port, reuse_address=True, reuse_port=reuse_port or None
    )


CONNECTIONS_KEY: Final = web.AppKey("gemstone_aio.connections", ConnectionGuard)
"""The bound on open connections (``max_connections``) and what it refused."""
