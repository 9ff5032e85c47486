"""The RabbitMQ transport's connection, and the log lines of its outages.

aio-pika's :class:`~aio_pika.RobustConnection` is the one reconnection mechanism: it is
made with ``fail_fast=False``, so it keeps trying from the very first attempt, every
``reconnect_interval`` seconds, and after each reconnection it restores the channels,
exchanges, queues, bindings and consumers declared through it. Nothing here loops
around it; :class:`BrokerLink` only watches it through its public callbacks
(``close_callbacks``, ``reconnect_callbacks``) and reports the outage once per change
of state:

- **down**: one WARNING when the first attempt fails (start-up goes on without the
  broker) or when an established connection is lost;
- **still down**: one WARNING every ``outage_log_interval`` seconds while it lasts,
  with the last error and the publications waiting;
- **back**: one INFO line when the connection is up again, with the outage's length.

aiormq and aio-pika log each failed attempt themselves (an ERROR, an INFO and a WARNING
every second with the defaults). A filter on their loggers drops the lines they emit
while working for a gemstone-aio connection (it knows them by a context variable set
when the connection starts, which the library's tasks inherit), and keeps them at DEBUG
when their logger is enabled for DEBUG. Lines about other connections of the process are
left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import aio_pika
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aio_pika.connection import make_url
from aio_pika.exceptions import (
    CONNECTION_EXCEPTIONS,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
)
from aiormq.exceptions import ChannelAccessRefused

__all__ = ["REFUSALS", "BrokerLink", "describe_error", "forget_owner"]

_log = logging.getLogger("gemstone_aio.event.rabbitmq")

_OWNER: contextvars.ContextVar[BrokerLink | None] = contextvars.ContextVar(
    "gemstone_aio_amqp_owner", default=None
)

# The client libraries' loggers whose lines about our connections are replaced by ours.
_LIBRARY_LOGGERS: Final = (
    "aiormq.connection",
    "aiormq.channel",
    "aio_pika.connection",
    "aio_pika.robust_connection",
    "aio_pika.channel",
    "aio_pika.robust_channel",
    "aio_pika.queue",
    "aio_pika.robust_queue",
    "aio_pika.exchange",
    "aio_pika.message",
    "aio_pika.tools",
)


# What the broker answers to a declaration it will never accept.
REFUSALS: Final = (ChannelAccessRefused, ChannelNotFoundEntity, ChannelPreconditionFailed)


def describe_error(exc: BaseException | None) -> str:
    """A short, single-line description of a connection error (no traceback)."""
    if exc is None:
        return "connection closed"
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())[:300]


class _LibraryLines(logging.Filter):
    """Drop (or demote to DEBUG) the client libraries' lines about our connections."""

    def filter(self, record: logging.LogRecord) -> bool:
        link = _OWNER.get()
        if link is None or record.levelno <= logging.DEBUG:
            return True
        if record.levelno >= logging.WARNING:
            try:
                link.note(record.getMessage())
            except Exception:  # a library object whose repr fails: keep the template
                link.note(str(record.msg))
        if logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return True
        return False


_FILTER: Final = _LibraryLines()


def _install_filter() -> None:
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def forget_owner() -> None:
    """Drop the connection owner from the current task's context.

    Consumer callbacks run in tasks aiormq creates, which inherit the owner; handlers
    (user code) must not have their own aio-pika lines filtered.
    """
    _OWNER.set(None)


class BrokerLink:
    """One robust connection to RabbitMQ, its start, its outages and their log lines.

    Args:
        url: The AMQP URL.
        options: ``connection_options`` of the transport (``timeout`` is the seconds
            one connection attempt may take; the others go into the URL's query, as
            :func:`aio_pika.connect_robust` does).
        who: The service's name, first word of every log line.
        safe_url: The URL with its password masked, for log lines.
        reconnect_interval: Seconds between two connection attempts (aio-pika's).
        attempt_timeout: Seconds one attempt may take when ``options`` has no ``timeout``.
        outage_log_interval: Seconds between two "still down" lines.
        publish_timeout: How long publications wait, for the "down" line.
        on_up: Called (awaited) each time the connection is up (first connection and
            every reconnection), before the link reports itself up: the transport opens
            what it needs there. A connection error in it waits for the next reconnection.
        waiting: How many publications wait for the broker now (for the log lines).
    """

    def __init__(
        self,
        url: str,
        options: Mapping[str, Any],
        *,
        who: str,
        safe_url: str,
        reconnect_interval: float,
        attempt_timeout: float,
        outage_log_interval: float,
        publish_timeout: float,
        on_up: Callable[[], Awaitable[None]],
        waiting: Callable[[], int],
    ) -> None:
        self.who = who
        self.safe_url = safe_url
        self.reconnect_interval = reconnect_interval
        self.outage_log_interval = outage_log_interval
        self.publish_timeout = publish_timeout
        self._on_up = on_up
        self._waiting = waiting
        opts = dict(options)
        self._attempt_timeout = opts.pop("timeout", None) or attempt_timeout
        properties = {
            "connection_name": f"gemstone-aio {who}",
            **(opts.pop("client_properties", None) or {}),
        }
        ssl_context = opts.pop("ssl_context", None)
        ssl_options = opts.pop("ssl_options", None)
        self.connection: AbstractRobustConnection = aio_pika.RobustConnection(
            make_url(url, ssl_options=ssl_options, **opts),
            ssl_context=ssl_context,
            client_properties=properties,
            reconnect_interval=reconnect_interval,
            fail_fast=False,
        )
        self.state = "new"  # new -> connecting -> up <-> down; closed
        self._up = asyncio.Event()
        self._decided = asyncio.Event()  # the first attempt succeeded or failed
        self._down_since = 0.0
        self._last_error = ""
        self._connector: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._setups: set[asyncio.Task[None]] = set()
        self._setup_lock = asyncio.Lock()

    @property
    def is_up(self) -> bool:
        """Whether the connection is up and the transport's set-up ran on it."""
        return self._up.is_set()

    async def wait_up(self) -> None:
        """Wait until :attr:`is_up` (the caller bounds the wait)."""
        await self._up.wait()

    async def open_channel(self, *, publisher_confirms: bool = True) -> AbstractRobustChannel:
        """Open a channel on the connection, as its owner.

        The channel's own tasks (created by aiormq and aio-pika) inherit the owner, so
        what they log about its closing during an outage is the link's to report.
        """
        token = _OWNER.set(self)
        try:
            return await self.connection.channel(publisher_confirms=publisher_confirms)
        finally:
            _OWNER.reset(token)

    def note(self, message: str) -> None:
        """Remember the last problem the client libraries reported (for "still down")."""
        self._last_error = " ".join(message.split())[:300]

    # -- start and stop ----------------------------------------------------------------

    async def open(self, wait: float) -> None:
        """Start connecting; return once the first attempt succeeded or failed.

        Never waits longer than ``wait`` seconds (an unreachable host can make an attempt
        last ``timeout`` seconds): past it, the link reports the broker down and goes on
        trying in the background.
        """
        _install_filter()
        self.state = "connecting"
        connection = self.connection
        connection.close_callbacks.add(self._on_close)
        connection.reconnect_callbacks.add(self._on_reconnect)
        token = _OWNER.set(self)
        try:
            # aio-pika's reconnection task is created inside: it inherits the owner.
            self._connector = asyncio.create_task(self._first_connection())
        finally:
            _OWNER.reset(token)
        try:
            await asyncio.wait_for(asyncio.shield(self._decided.wait()), wait)
        except TimeoutError:
            self._went_down(f"no answer within {wait:g} s", starting=True)

    async def _first_connection(self) -> None:
        await self.connection.connect(timeout=self._attempt_timeout)
        await self._became_up()

    async def close(self) -> None:
        """Stop reconnecting and close the connection."""
        self.state = "closed"
        self._up.clear()
        tasks = [t for t in (self._ticker, self._connector, *self._setups) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(*CONNECTION_EXCEPTIONS):
            await self.connection.close()

    # -- state changes -----------------------------------------------------------------

    def _on_close(self, _connection: Any, exc: BaseException | None = None) -> None:
        # aio-pika calls this when the connection drops and after each failed attempt.
        if self.state == "closed":
            return
        self._up.clear()
        self._last_error = describe_error(exc)
        if self.state in ("connecting", "up"):
            self._went_down(self._last_error, starting=self.state == "connecting")

    def _on_reconnect(self, _connection: Any) -> None:
        # Called once aio-pika has restored the channels, queues and consumers.
        if self.state == "closed":
            return
        task = asyncio.get_running_loop().create_task(self._became_up())
        self._setups.add(task)
        task.add_done_callback(self._setups.discard)

    def _went_down(self, reason: str, *, starting: bool) -> None:
        loop = asyncio.get_running_loop()
        self.state = "down"
        self._decided.set()
        self._down_since = loop.time()
        if starting:
            _log.warning(
                "%s: cannot reach RabbitMQ at %s (%s); starting without it: publications "
                "wait up to %g s for it, consumers start once it is reachable; retrying "
                "every %g s",
                self.who,
                self.safe_url,
                reason,
                self.publish_timeout,
                self.reconnect_interval,
            )
        else:
            _log.warning(
                "%s: lost the connection to RabbitMQ at %s (%s); reconnecting every %g s; "
                "publications wait up to %g s",
                self.who,
                self.safe_url,
                reason,
                self.reconnect_interval,
                self.publish_timeout,
            )
        if self._ticker is None or self._ticker.done():
            self._ticker = loop.create_task(self._still_down())

    async def _became_up(self) -> None:
        async with self._setup_lock:
            if self.state == "closed" or self.connection.is_closed:
                return
            try:
                await self._on_up()
            except REFUSALS as exc:
                # The broker refused a declaration (arguments, permissions): no
                # reconnection will change that. Say so; what did work is used.
                _log.error(
                    "%s: RabbitMQ at %s refused to set up events: %s",
                    self.who,
                    self.safe_url,
                    describe_error(exc),
                )
            except CONNECTION_EXCEPTIONS as exc:
                # Lost again while setting up: the next reconnection calls us again.
                self.note(describe_error(exc))
                return
            was, self.state = self.state, "up"
            self._up.set()
            self._decided.set()
            if self._ticker is not None:
                self._ticker.cancel()
                self._ticker = None
            if was == "down":
                _log.info(
                    "%s: RabbitMQ at %s is reachable again after %.1f s",
                    self.who,
                    self.safe_url,
                    asyncio.get_running_loop().time() - self._down_since,
                )

    async def _still_down(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.outage_log_interval)
            if self.state != "down":
                return
            _log.warning(
                "%s: RabbitMQ at %s still unreachable after %.0f s (last error: %s); "
                "%d publications waiting",
                self.who,
                self.safe_url,
                loop.time() - self._down_since,
                self._last_error or "none reported",
                self._waiting(),
            )
