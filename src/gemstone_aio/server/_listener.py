"""The listening socket, with a bound on open connections.

aiohttp's sites have no such bound, so the service listens itself with
``loop.create_server`` and aiohttp's public protocol factory (``AppRunner.server``): past
``max_connections`` open connections a new one is closed at once (counted, and logged
once per overload episode, not once per connection). Slow clients are handled by
aiohttp's own keep-alive timer (``keepalive_timeout``: a connection that has not sent a
complete request in that time is closed, whether it is idle or trickling headers) and
by the endpoint's body read deadline.

With TLS (``ssl_certfile``), asyncio runs the handshake before aiohttp sees the
connection, so aiohttp does not count it yet: the guard counts connections still in
their handshake too (each for at most the handshake timeout, ``keepalive_timeout``,
after which asyncio aborts it), and hands the connection to aiohttp once it completes.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import ssl
import time
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


class _Handshaking(asyncio.Protocol):
    """Stands for aiohttp's protocol while asyncio runs the TLS handshake.

    Once the handshake completes it steps aside: the TLS transport gets aiohttp's
    protocol (``set_protocol``), which then sees the connection as made. A handshake that
    fails or times out never reaches aiohttp; the guard forgets it at its deadline.
    """

    __slots__ = ("_guard", "_protocol")

    def __init__(self, guard: ConnectionGuard, protocol: asyncio.Protocol) -> None:
        self._guard = guard
        self._protocol = protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._guard._handshakes.pop(self, None)
        transport.set_protocol(self._protocol)
        self._protocol.connection_made(transport)


class ConnectionGuard:
    """The protocol factory of the listening socket: aiohttp's, within ``limit`` connections.

    Attributes:
        limit: The most connections open at once (TLS handshakes under way included).
        refused: Connections closed at once because ``limit`` were open.
    """

    def __init__(self, limit: int, logger: logging.Logger) -> None:
        self._server: web.Server | None = None
        self.limit = limit
        self._logger = logger
        self._overloaded = False
        self.refused = 0
        self._handshake_timeout: float | None = None
        # TLS connections in their handshake, oldest first, with when asyncio gives up.
        self._handshakes: dict[_Handshaking, float] = {}

    def attach(self, server: web.Server) -> None:
        """Hand connections to ``server`` (the runner's, once it is set up)."""
        self._server = server

    def expect_tls(self, handshake_timeout: float) -> None:
        """Count connections in their TLS handshake (``handshake_timeout`` s at most)."""
        self._handshake_timeout = handshake_timeout

    def _in_handshake(self) -> int:
        handshakes = self._handshakes
        if handshakes:
            now = time.monotonic()
            while handshakes:
                oldest, until = next(iter(handshakes.items()))
                if until > now:
                    break
                del handshakes[oldest]  # asyncio has aborted it by now
        return len(handshakes)

    @property
    def open(self) -> int:
        """Connections open right now (TLS handshakes under way included)."""
        made = 0 if self._server is None else len(self._server.connections)
        return made + self._in_handshake()

    def __call__(self) -> asyncio.Protocol:
        if self._server is None:
            raise RuntimeError("ConnectionGuard used before attach()")
        if self.open >= self.limit:
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
        if self._handshake_timeout is None:
            return self._server()
        pending = _Handshaking(self, self._server())
        # A second past asyncio's own limit: by then the handshake is surely over.
        self._handshakes[pending] = time.monotonic() + self._handshake_timeout + 1.0
        return pending


async def listen(
    factory: Callable[[], asyncio.Protocol],
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    handshake_timeout: float | None = None,
) -> asyncio.Server:
    """Listen on ``host:port`` (``port`` 0: a free one) with ``factory``'s protocols.

    ``reuse_port``: share the port with the other worker processes (``SO_REUSEPORT``).
    ``ssl_context``: speak TLS, each handshake within ``handshake_timeout`` seconds (a
    :class:`ConnectionGuard` factory then counts the handshakes under way, see
    :meth:`ConnectionGuard.expect_tls`).
    """
    loop = asyncio.get_running_loop()
    if ssl_context is not None and isinstance(factory, ConnectionGuard):
        factory.expect_tls(handshake_timeout or 60.0)
    return await loop.create_server(
        factory,
        host or None,
        port,
        reuse_address=True,
        reuse_port=reuse_port or None,
        ssl=ssl_context,
        ssl_handshake_timeout=handshake_timeout if ssl_context is not None else None,
    )


CONNECTIONS_KEY: Final = web.AppKey("gemstone_aio.connections", ConnectionGuard)
"""The bound on open connections (``max_connections``) and what it refused."""
