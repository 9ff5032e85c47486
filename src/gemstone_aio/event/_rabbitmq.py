"""The RabbitMQ event transport, on aio-pika.

Topology (documented for other programs in ``docs/events.md``), for an event ``E``:

- ``gemstone.broadcast.E``: fanout exchange, durable. Each subscribing instance binds
  its own server-named, exclusive, auto-delete queue to it.
- ``gemstone.tasks.E``: direct exchange, durable; messages use routing key ``tasks``.
  It routes to the durable queue ``gemstone.tasks.E``, declared and bound by publishers
  and subscribers alike, from which subscribing instances compete.
- ``gemstone.dead-letter``: direct exchange, durable; routing key ``E`` leads to the
  durable queue ``gemstone.dead-letter.E``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final
from urllib.parse import quote

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from yarl import URL

from ..errors import EventPublishError, ServiceConfigurationError
from ._base import HEADER_ATTEMPTS, HEADER_ERROR, BaseEventTransport, Delivery, OutgoingEvent
from ._base import Subscription as Subscription

__all__ = [
    "BROADCAST_PREFIX",
    "DEAD_LETTER_EXCHANGE",
    "DEAD_LETTER_PREFIX",
    "TASKS_PREFIX",
    "TASKS_ROUTING_KEY",
    "RabbitMqEventTransport",
]

BROADCAST_PREFIX: Final = "gemstone.broadcast."
"""Prefix of the fanout exchange of each broadcast event."""
TASKS_PREFIX: Final = "gemstone.tasks."
"""Prefix of the direct exchange and of the durable queue of each one-of-N event."""
TASKS_ROUTING_KEY: Final = "tasks"
"""Routing key of one-of-N events."""
DEAD_LETTER_EXCHANGE: Final = "gemstone.dead-letter"
"""The direct exchange of dead letters; the routing key is the event name."""
DEAD_LETTER_PREFIX: Final = "gemstone.dead-letter."
"""Prefix of the durable dead-letter queue of each event."""

_log = logging.getLogger("gemstone_aio.event.rabbitmq")


_DEFAULT_HOST: Final = "127.0.0.1"
_DEFAULT_USER: Final = "guest"  # RabbitMQ's default user; its password is "guest" too
_DEFAULT_PORTS: Final = {"amqp": 5672, "amqps": 5671}

# gemstone 0.10 passed **connection_options to pika's ConnectionParameters. Two of pika's
# names have an aio-pika counterpart; the others, and aio-pika's own login= (which it
# ignores when given a URL, as this transport always does), would be silently ignored,
# so they are refused, with what to do instead.
_PIKA_RENAMED: Final = {"virtual_host": "virtualhost", "heartbeat_interval": "heartbeat"}
_PIKA_ONLY: Final = {
    "credentials": "give username= and password=",
    "connection_attempts": "the transport keeps reconnecting by itself",
    "socket_timeout": "give timeout= (seconds to connect)",
    "blocked_connection_timeout": "aio-pika has no such limit",
    "backpressure_detection": "aio-pika has no such setting",
    "locale": "aio-pika has no such setting",
    "login": "give the user as username=",
}


def _mask(url: URL) -> str:
    """``url`` as text with its password (if any) replaced by ``***``."""
    return str(url.with_password("***")) if url.password else str(url)


def _translate_pika_options(options: dict[str, Any]) -> dict[str, Any]:
    """Rename pika's connection options to aio-pika's; refuse those aio-pika would ignore."""
    for old, new in _PIKA_RENAMED.items():
        if old in options and new in options:
            raise ServiceConfigurationError(
                f"connection options {new}= and pika's {old}= say the same thing: give one"
            )
    translated: dict[str, Any] = {}
    for name, value in options.items():
        if name in _PIKA_ONLY:
            raise ServiceConfigurationError(
                f"connection option {name}= is not understood by aio-pika: {_PIKA_ONLY[name]}"
            )
        translated[_PIKA_RENAMED.get(name, name)] = value
    return translated


def _checked_url(
    url: str | URL,
    port: int | None,
    username: str | None,
    password: str | None,
    host: str | None,
    options: dict[str, Any],
) -> str:
    """Check an AMQP URL given with the options of the transport; return it as text."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        raise ServiceConfigurationError(f"invalid AMQP URL: {exc}") from None
    safe = _mask(parsed)
    parts = {"host": host, "port": port, "username": username, "password": password}
    mixed = [f"{name}=" for name, value in parts.items() if value is not None]
    if mixed:
        raise ServiceConfigurationError(
            "give either an AMQP URL or host, port, username and password, not both: got "
            f"the URL {safe!r} and {', '.join(mixed)}"
        )
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
        raise ServiceConfigurationError(
            f"not an AMQP URL (amqp://user:password@host:port/vhost): {safe!r}"
        )
    ignored = [f"{name}=" for name in ("virtualhost", "ssl") if name in options]
    if ignored:
        raise ServiceConfigurationError(
            f"with a URL, aio-pika ignores {', '.join(ignored)}: put the virtual host in the "
            f"URL's path and use amqps:// for TLS (URL {safe!r})"
        )
    return str(url)


def _url_from_parts(
    host: str | None,
    port: int | None,
    username: str | None,
    password: str | None,
    options: dict[str, Any],
) -> str:
    """Build the AMQP URL from gemstone 0.10's parts; ``options`` loses ``ssl``/``virtualhost``."""
    host = _DEFAULT_HOST if host is None else host
    if not isinstance(host, str) or not host:
        raise ServiceConfigurationError(f"host must be a non-empty string, got {host!r}")
    ssl = options.pop("ssl", False)
    if not isinstance(ssl, bool):
        raise ServiceConfigurationError(f"ssl must be True or False, got {ssl!r}")
    scheme = "amqps" if ssl else "amqp"
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    elif isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ServiceConfigurationError(f"port must be an integer from 1 to 65535, got {port!r}")
    for label, value in (("username", username), ("password", password)):
        if value is not None and not isinstance(value, str):
            raise ServiceConfigurationError(f"{label} must be a string, got {type(value).__name__}")
    if not username:
        if password:
            raise ServiceConfigurationError(
                "a password is given without a username: give username= too (no username "
                f"means RabbitMQ's default user {_DEFAULT_USER!r} with its default password)"
            )
        username = password = _DEFAULT_USER
    elif not password:
        # aio-pika would send "guest" in place of an empty password.
        raise ServiceConfigurationError(f"username {username!r} needs a password=")
    vhost = options.pop("virtualhost", "/")
    if not isinstance(vhost, str) or not vhost:
        raise ServiceConfigurationError(f"virtualhost must be a non-empty string, got {vhost!r}")
    try:
        built = URL.build(
            scheme=scheme, host=host, port=port, user=username, password=password, path="/"
        )
    except ValueError as exc:
        raise ServiceConfigurationError(f"host {host!r} is not a valid host name: {exc}") from None
    if vhost != "/":
        # The path holds the virtual host quoted whole: a "/" in its name becomes %2F.
        built = built.with_path("/" + quote(vhost, safe=""), encoded=True)
    return str(built)


class _AmqpDelivery(Delivery):
    def __init__(
        self,
        message: AbstractIncomingMessage,
        event_name: str,
        broadcast: bool,
        transport: RabbitMqEventTransport,
    ) -> None:
        self.event_name = event_name
        self.body = message.body
        self.headers = message.headers or {}  # read-only here: dead_letter() copies it
        self.broadcast = broadcast
        self.settled = False
        self._message = message
        self._transport = transport

    async def ack(self) -> None:
        self.settled = True
        try:
            await self._message.ack()
        except CONNECTION_EXCEPTIONS as exc:
            # The channel died: the broker redelivers the message (at least once).
            _log.warning(
                "could not ack event %r (%s); it will be redelivered", self.event_name, exc
            )

    async def dead_letter(self, reason: str, attempts: int) -> None:
        self.settled = True
        headers = {**self.headers, HEADER_ERROR: reason[:4000], HEADER_ATTEMPTS: attempts}
        try:
            await self._transport.publish_dead_letter(self.event_name, self.body, headers)
        except EventPublishError as exc:
            _log.error("could not dead-letter event %r (%s); requeueing it", self.event_name, exc)
            await self.requeue()
            return
        await self.ack()

    async def requeue(self) -> None:
        self.settled = True
        with contextlib.suppress(*CONNECTION_EXCEPTIONS):
            await self._message.nack(requeue=True)


class RabbitMqEventTransport(BaseEventTransport):
    """Events over RabbitMQ: robust connection, publisher confirms, acks after handling.

    ``broadcast=False`` events are persistent messages on a durable queue, confirmed by
    the broker before :meth:`publish` returns, and acknowledged only once a handler
    succeeded, so a confirmed event survives broker restarts and consumer crashes.

    The broker is given either as an AMQP URL or, as in gemstone 0.10, by its parts::

        RabbitMqEventTransport("amqp://user:password@host:5672/vhost")
        RabbitMqEventTransport(host="127.0.0.1", port=5672, username="", password="")
        RabbitMqEventTransport("127.0.0.1", 5672, "guest", "guest")

    Given by its parts, the URL is built with the user and password quoted, so any
    characters work; an empty ``username`` means RabbitMQ's default user, ``guest``
    with the password ``guest``. :attr:`url` is the URL in both cases.

    Args:
        url: The AMQP URL (``amqp://`` or ``amqps://``). A value without ``://`` is taken
            for the host, as in gemstone 0.10's ``RabbitMqEventTransport(host, port,
            username, password)``. Default: ``amqp://guest:guest@127.0.0.1:5672/``.
        port: The port (default 5672, or 5671 with ``ssl=True``).
        username: The user (default: ``guest``).
        password: The user's password (default: ``guest`` for the default user).
        host: The broker's host name or address (default ``127.0.0.1``).
        prefetch_count: Unacknowledged messages per event and instance (default: the
            handler concurrency, the service's ``max_parallel_blocking_tasks``).
        publish_timeout: Seconds :meth:`publish` keeps retrying (waiting for the broker,
            reconnecting) before it raises :class:`~gemstone_aio.errors.EventPublishError`.
        connect_timeout: Seconds start-up waits for the first connection; past that the
            service starts anyway and the transport keeps connecting in the background.
        reconnect_interval: Seconds between reconnection attempts once connected.
        max_attempts: Handler runs per message before it is dead-lettered.
        retry_delay: Seconds before the first retry (doubled for each further one).
        max_retry_delay: Upper bound of the delay between retries.
        **connection_options: Passed to :func:`aio_pika.connect_robust` (for instance
            ``heartbeat``, ``timeout``, ``ssl_options``, ``client_properties``). Given
            with a host instead of a URL, ``virtualhost`` (or pika's ``virtual_host``)
            and ``ssl`` become part of the URL, and pika's ``heartbeat_interval`` is
            read as ``heartbeat``.

    Raises:
        ServiceConfigurationError: A setting is invalid, a URL is mixed with host, port,
            username or password, or an option is one aio-pika would ignore; the
            message names it.
    """

    def __init__(
        self,
        url: str | URL | None = None,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        *,
        host: str | None = None,
        prefetch_count: int | None = None,
        publish_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        reconnect_interval: float = 1.0,
        max_attempts: int = 5,
        retry_delay: float = 0.1,
        max_retry_delay: float = 5.0,
        **connection_options: Any,
    ) -> None:
        super().__init__(
            max_attempts=max_attempts, retry_delay=retry_delay, max_retry_delay=max_retry_delay
        )
        options = _translate_pika_options(connection_options)
        if isinstance(url, URL) or (isinstance(url, str) and "://" in url):
            self.url = _checked_url(url, port, username, password, host, options)
        else:
            if url is not None and host is not None:
                raise ServiceConfigurationError(
                    f"the host is given twice: {url!r} (first argument) and host={host!r}"
                )
            self.url = _url_from_parts(
                url if url is not None else host, port, username, password, options
            )
        if prefetch_count is not None and prefetch_count < 1:
            raise ServiceConfigurationError(f"prefetch_count must be >= 1, got {prefetch_count!r}")
        self.prefetch_count = prefetch_count
        self.publish_timeout = publish_timeout
        self.connect_timeout = connect_timeout
        self.reconnect_interval = reconnect_interval
        self.connection_options = options
        self.reset()

    def reset(self) -> None:
        super().reset()
        self._ready: asyncio.Event | None = None
        self._connector: asyncio.Task[None] | None = None
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._declare_lock: asyncio.Lock | None = None
        self._subscriptions: list[Subscription] = []
        self._channels: list[AbstractChannel] = []
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._inflight: set[asyncio.Task[Any]] = set()
        self._consuming = False

    @property
    def connected(self) -> bool:
        """Whether the connection is established right now."""
        conn = self._connection
        return conn is not None and not conn.is_closed and self._ready is not None

    def readiness(self) -> tuple[bool, str | None]:
        conn = self._connection
        if self._ready is None:
            return False, "not started"
        if conn is None or conn.is_closed or not conn.connected.is_set():
            return False, f"not connected to {self._safe_url()}"
        return True, f"connected to {self._safe_url()}"

    # -- connection --------------------------------------------------------------------

    async def connect(self, service_name: str) -> None:
        self.service_name = service_name
        self._ready = asyncio.Event()
        self._declare_lock = asyncio.Lock()
        self._connector = asyncio.create_task(self._connect_loop())
        self._connector.add_done_callback(self._connector_done)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready.wait()), self.connect_timeout)
        except TimeoutError:
            _log.warning(
                "%s: RabbitMQ at %s is not reachable yet; connecting in the background",
                service_name,
                self._safe_url(),
            )

    def _connector_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            _log.error(
                "%s: setting up RabbitMQ at %s failed: %r; events cannot be published",
                self.service_name,
                self._safe_url(),
                task.exception(),
            )

    async def _connect_loop(self) -> None:
        options = dict(self.connection_options)
        # The connection's name in RabbitMQ's management UI, unless given.
        properties = {
            "connection_name": f"gemstone-aio {self.service_name}",
            **(options.pop("client_properties", None) or {}),
        }
        delay = 0.2
        while True:
            try:
                connection = await aio_pika.connect_robust(
                    self.url,
                    reconnect_interval=self.reconnect_interval,
                    client_properties=properties,
                    **options,
                )
                break
            except CONNECTION_EXCEPTIONS as exc:
                _log.warning(
                    "cannot connect to RabbitMQ at %s (%s); retrying in %.1f s",
                    self._safe_url(),
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self._connection = connection
        self._publisher = await connection.channel(publisher_confirms=True)
        assert self._ready is not None
        self._ready.set()
        if self._consuming:
            await self._declare_consumers()

    async def _wait_ready(self) -> AbstractChannel:
        if self._ready is None:
            raise EventPublishError("the RabbitMQ transport is not connected (service not running)")
        await self._ready.wait()
        assert self._publisher is not None
        return self._publisher

    def _safe_url(self) -> str:
        return _mask(URL(self.url))

    # -- publishing --------------------------------------------------------------------

    async def _exchange(
        self, channel: AbstractChannel, key: str, broadcast: bool
    ) -> AbstractExchange:
        # ``key``: the exchange's name (gemstone.broadcast.E or gemstone.tasks.E).
        exchange = self._exchanges.get(key)
        if exchange is not None:
            return exchange
        assert self._declare_lock is not None
        async with self._declare_lock:
            if key not in self._exchanges:
                if broadcast:
                    found = await channel.declare_exchange(
                        key, aio_pika.ExchangeType.FANOUT, durable=True
                    )
                else:
                    found = await channel.declare_exchange(
                        key, aio_pika.ExchangeType.DIRECT, durable=True
                    )
                    queue = await channel.declare_queue(key, durable=True)
                    await queue.bind(found, routing_key=TASKS_ROUTING_KEY)
                self._exchanges[key] = found
            return self._exchanges[key]

    async def _publish_confirmed(
        self,
        what: tuple[str, str],
        key: str,
        declare: Callable[..., Awaitable[AbstractExchange]],
        declare_args: tuple[Any, ...],
        message: aio_pika.Message,
        routing_key: str,
    ) -> None:
        # ``what``: how errors name the message ("event", its name); ``key``: the
        # exchange's key in ``self._exchanges``; ``declare(channel, *declare_args)``
        # declares it. When connected with the exchange declared already, the attempt
        # publishes straight away: aio-pika's own publish timeout (which covers the
        # confirm) bounds it, no timer of ours, no lookups or waiting.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_timeout
        delay = 0.05
        while True:
            try:
                exchange = self._exchanges.get(key)
                ready = self._ready
                if exchange is None or ready is None or not ready.is_set():
                    async with asyncio.timeout(max(0.0, deadline - loop.time())):
                        exchange = await declare(await self._wait_ready(), *declare_args)
                await exchange.publish(
                    message,
                    routing_key=routing_key,
                    mandatory=False,
                    timeout=max(0.0, deadline - loop.time()),
                )
                return
            except TimeoutError as exc:
                raise EventPublishError(
                    f"{what[0]} {what[1]!r} was not confirmed by RabbitMQ within "
                    f"{self.publish_timeout} s"
                ) from exc
            except CONNECTION_EXCEPTIONS as exc:
                if loop.time() + delay >= deadline:
                    raise EventPublishError(
                        f"{what[0]} {what[1]!r} could not be published: {exc}"
                    ) from exc
                _log.debug("publishing %s %r failed (%s); retrying", *what, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def publish(self, event: OutgoingEvent) -> None:
        message = aio_pika.Message(
            event.body,
            content_type="application/json",
            headers=dict(event.headers),
            delivery_mode=(
                aio_pika.DeliveryMode.NOT_PERSISTENT
                if event.broadcast
                else aio_pika.DeliveryMode.PERSISTENT
            ),
            # Unique, not secret: random bits without uuid4's system call.
            message_id=f"{random.getrandbits(128):032x}",
            timestamp=time.time(),
            app_id=event.service,
        )
        broadcast = event.broadcast
        key = f"{BROADCAST_PREFIX if broadcast else TASKS_PREFIX}{event.name}"
        await self._publish_confirmed(
            ("event", event.name),
            key,
            self._exchange,
            (key, broadcast),
            message,
            "" if broadcast else TASKS_ROUTING_KEY,
        )

    async def _dead_letter_exchange(self, channel: AbstractChannel, event: str) -> AbstractExchange:
        key = f"{DEAD_LETTER_PREFIX}{event}"
        exchange = self._exchanges.get(key)
        if exchange is None:
            exchange = await channel.declare_exchange(
                DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
            )
            queue = await channel.declare_queue(key, durable=True)
            await queue.bind(exchange, routing_key=event)
            self._exchanges[key] = exchange
        return exchange

    async def publish_dead_letter(self, event: str, body: bytes, headers: dict[str, Any]) -> None:
        """Publish a message to the dead-letter queue of ``event`` (persistent, confirmed)."""
        message = aio_pika.Message(
            body,
            content_type="application/json",
            headers=headers,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            timestamp=time.time(),
        )

        await self._publish_confirmed(
            ("dead letter of", event),
            f"{DEAD_LETTER_PREFIX}{event}",
            self._dead_letter_exchange,
            (event,),
            message,
            event,
        )

    # -- consuming ---------------------------------------------------------------------

    async def start_consuming(self, subscriptions: Sequence[Subscription]) -> None:
        self._subscriptions = list(subscriptions)
        self._consuming = True
        if self._ready is not None and self._ready.is_set():
            await self._declare_consumers()

    async def _declare_consumers(self) -> None:
        assert self._connection is not None
        for sub in self._subscriptions:
            name = sub.event_name
            channel = await self._connection.channel()
            self._channels.append(channel)
            await channel.set_qos(prefetch_count=self.prefetch_count or sub.concurrency)
            await self._dead_letter_exchange(channel, name)
            fanout = await channel.declare_exchange(
                BROADCAST_PREFIX + name, aio_pika.ExchangeType.FANOUT, durable=True
            )
            mine = await channel.declare_queue("", exclusive=True, auto_delete=True)
            await mine.bind(fanout)
            direct = await channel.declare_exchange(
                TASKS_PREFIX + name, aio_pika.ExchangeType.DIRECT, durable=True
            )
            shared = await channel.declare_queue(TASKS_PREFIX + name, durable=True)
            await shared.bind(direct, routing_key=TASKS_ROUTING_KEY)
            for queue, broadcast in ((mine, True), (shared, False)):
                tag = await queue.consume(self._on_message_factory(sub, broadcast))
                self._consumers.append((queue, tag))

    def _on_message_factory(self, sub: Subscription, broadcast: bool) -> Any:
        callback = sub.callback
        event_name = sub.event_name
        inflight = self._inflight

        async def on_message(message: AbstractIncomingMessage) -> None:
            # aio-pika already runs each delivery in a task of its own: track it, so
            # stop_consuming can wait for the handlers still running.
            task = asyncio.current_task()
            assert task is not None
            inflight.add(task)
            delivery = _AmqpDelivery(message, event_name, broadcast, self)
            try:
                await callback(delivery)
            finally:
                try:
                    if not delivery.settled:
                        await asyncio.shield(delivery.requeue())
                finally:
                    inflight.discard(task)

        return on_message

    async def stop_consuming(self, grace_period: float) -> None:
        self._consuming = False
        for queue, tag in self._consumers:
            with contextlib.suppress(*CONNECTION_EXCEPTIONS):
                await queue.cancel(tag)
        self._consumers.clear()
        if self._inflight:
            _, late = await asyncio.wait(set(self._inflight), timeout=grace_period)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for channel in self._channels:
            with contextlib.suppress(*CONNECTION_EXCEPTIONS):
                await channel.close()
        self._channels.clear()

    async def close(self) -> None:
        if self._consuming or self._consumers:
            await self.stop_consuming(0)
        if self._connector is not None and not self._connector.done():
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(*CONNECTION_EXCEPTIONS):
                await connection.close()
        self._exchanges.clear()
        self._ready = None

    def __repr__(self) -> str:
        return f"RabbitMqEventTransport({self._safe_url()!r})"
