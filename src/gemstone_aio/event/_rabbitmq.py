"""The RabbitMQ event transport, on aio-pika.

Topology (documented for other programs in ``docs/events.md``; the names live in
:mod:`._amqp_topology`), for an event ``E``:

- ``gemstone.broadcast.E``: fanout exchange, durable. Each subscribing instance binds
  its own durable queue ``gemstone.broadcast.E.<service>.<id>`` to it, with an expiry
  (``x-expires``) for instances that die; it outlives connection losses and broker
  restarts while the instance lives, and the instance deletes it when it stops.
- ``gemstone.tasks.E``: direct exchange, durable; messages use routing key ``tasks``.
  It routes to the quorum queue ``gemstone.tasks.E``, declared and bound by publishers
  and subscribers alike, from which subscribing instances compete.
- ``gemstone.dead-letter``: direct exchange, durable; routing key ``E`` leads to the
  durable queue ``gemstone.dead-letter.E``.

Every message is persistent and confirmed by the broker. The connection is aio-pika's
robust connection (see :mod:`._amqp_connection`); the consumer of the shared queue is
in :mod:`._amqp_consumer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from yarl import URL

from ..errors import EventPublishError, ServiceConfigurationError
from ..tls import client_context
from ._amqp_connection import REFUSALS, BrokerLink, forget_owner
from ._amqp_consumer import AmqpDelivery, SharedQueueConsumer
from ._amqp_topology import (
    BROADCAST_PREFIX,
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_PREFIX,
    TASKS_PREFIX,
    TASKS_ROUTING_KEY,
    check_event_name,
    declare_broadcast_exchange,
    declare_dead_letter_route,
    declare_tasks_route,
    instance_queue_name,
    tasks_queue_is_quorum,
    warn_classic_tasks_queue,
)
from ._amqp_url import checked_url, mask, translate_pika_options, url_from_parts
from ._base import BaseEventTransport, OutgoingEvent
from ._base import Subscription as Subscription

__all__ = [
    "BROADCAST_PREFIX",
    "DEAD_LETTER_EXCHANGE",
    "DEAD_LETTER_PREFIX",
    "TASKS_PREFIX",
    "TASKS_ROUTING_KEY",
    "RabbitMqEventTransport",
]

_Handle = Callable[[AbstractIncomingMessage], Awaitable[None]]


async def _bounded(step: Awaitable[Any], timeout: float) -> None:
    """Run a broker round trip, giving up after ``timeout`` s or on a connection error."""
    with contextlib.suppress(*CONNECTION_EXCEPTIONS):
        await asyncio.wait_for(step, timeout)


def _positive(label: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ServiceConfigurationError(f"{label} must be a number > 0, got {value!r}")
    return float(value)


def _tls_context(
    url: str,
    options: dict[str, Any],
    ca_certs: str | None,
    certfile: str | None,
    keyfile: str | None,
) -> Any:
    """The TLS context of ``ssl_ca_certs``/``ssl_certfile``/``ssl_keyfile`` (amqps:// only)."""
    if not url.startswith("amqps://"):
        raise ServiceConfigurationError(
            "ssl_ca_certs, ssl_certfile and ssl_keyfile need an amqps:// URL, got "
            f"{mask(URL(url))!r}"
        )
    if "ssl_context" in options:
        raise ServiceConfigurationError("give ssl_context or ssl_ca_certs/ssl_certfile, not both")
    return client_context(ca_certs, certfile, keyfile)


class RabbitMqEventTransport(BaseEventTransport):
    """Events over RabbitMQ: robust connection, publisher confirms, acks after handling.

    Every message is persistent and confirmed by the broker before :meth:`publish`
    returns. ``broadcast=False`` events wait on a quorum queue and are acknowledged only
    once a handler succeeded, so a confirmed event survives broker restarts and
    consumer crashes; the broker counts deliveries, so one whose handling kills the
    process is dead-lettered after ``max_attempts`` of them. Each subscribing instance
    receives broadcasts on a durable queue of its own that outlives connection losses
    and broker restarts while the instance runs.

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
        publish_timeout: Seconds :meth:`publish` waits for the broker (while it is
            unreachable, and for its confirm) before it raises
            :class:`~gemstone_aio.errors.EventPublishError`.
        connect_timeout: Longest start-up wait for the first connection attempt (and the
            time one attempt may take, unless ``timeout`` is given): a refused
            connection returns at once, and the service starts without the broker,
            connecting in the background.
        reconnect_interval: Seconds between two connection attempts while the broker is
            unreachable (aio-pika's robust connection makes them).
        outage_log_interval: Seconds between two "still unreachable" log lines.
        broadcast_queue_expiry: Seconds a subscribing instance's broadcast queue stays
            on the broker without a consumer (the instance died, or is cut off from the
            broker) before RabbitMQ deletes it with what it holds.
        max_attempts: Handler runs (and deliveries) per message before it is
            dead-lettered.
        retry_delay: Seconds before the first retry (doubled for each further one).
        max_retry_delay: Upper bound of the delay between retries.
        ssl_ca_certs: With ``amqps://``: the CA bundle (PEM) the broker's certificate is
            verified against, instead of the system store.
        ssl_certfile: With ``amqps://``: a client certificate to present (RabbitMQ's
            ``ssl_options.verify = verify_peer``); it may hold the key.
        ssl_keyfile: Its private key (refused if other users can read the file).
        **connection_options: Passed to aio-pika's robust connection, as
            :func:`aio_pika.connect_robust` takes them (for instance ``heartbeat``,
            ``timeout``, ``ssl_options``, ``client_properties``). Given with a host
            instead of a URL, ``virtualhost`` (or pika's ``virtual_host``) and ``ssl``
            become part of the URL, and pika's ``heartbeat_interval`` is read as
            ``heartbeat``.

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
        outage_log_interval: float = 60.0,
        broadcast_queue_expiry: float = 300.0,
        max_attempts: int = 5,
        retry_delay: float = 0.1,
        max_retry_delay: float = 5.0,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        **connection_options: Any,
    ) -> None:
        super().__init__(
            max_attempts=max_attempts, retry_delay=retry_delay, max_retry_delay=max_retry_delay
        )
        options = translate_pika_options(connection_options)
        if isinstance(url, URL) or (isinstance(url, str) and "://" in url):
            self.url = checked_url(url, port, username, password, host, options)
        else:
            if url is not None and host is not None:
                raise ServiceConfigurationError(
                    f"the host is given twice: {url!r} (first argument) and host={host!r}"
                )
            self.url = url_from_parts(
                url if url is not None else host, port, username, password, options
            )
        if prefetch_count is not None and prefetch_count < 1:
            raise ServiceConfigurationError(f"prefetch_count must be >= 1, got {prefetch_count!r}")
        self.prefetch_count = prefetch_count
        self.publish_timeout = _positive("publish_timeout", publish_timeout)
        self.connect_timeout = _positive("connect_timeout", connect_timeout)
        self.reconnect_interval = _positive("reconnect_interval", reconnect_interval)
        self.outage_log_interval = _positive("outage_log_interval", outage_log_interval)
        self.broadcast_queue_expiry = _positive("broadcast_queue_expiry", broadcast_queue_expiry)
        if ssl_ca_certs or ssl_certfile or ssl_keyfile:
            options["ssl_context"] = _tls_context(
                self.url, options, ssl_ca_certs, ssl_certfile, ssl_keyfile
            )
        self.connection_options = options
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.instance_id = ""
        self._link: BrokerLink | None = None
        self._publisher: AbstractRobustChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._quorum: dict[str, bool] = {}
        self._declare_lock: asyncio.Lock | None = None
        self._consumers_lock: asyncio.Lock | None = None
        self._subscriptions: list[Subscription] = []
        self._declared: set[str] = set()
        self._channels: list[AbstractChannel] = []
        self._shared: list[SharedQueueConsumer] = []
        self._broadcast: list[tuple[AbstractQueue, str]] = []
        self._inflight: set[asyncio.Task[Any]] = set()
        self._consuming = False
        self._publishing = 0

    @property
    def connected(self) -> bool:
        """Whether the connection is established (and set up) right now."""
        return self._link is not None and self._link.is_up

    def readiness(self) -> tuple[bool, str | None]:
        if self._link is None:
            return False, "not started"
        if not self._link.is_up:
            return False, f"not connected to {self._safe_url()}"
        return True, f"connected to {self._safe_url()}"

    def _safe_url(self) -> str:
        return mask(URL(self.url))

    # -- connection --------------------------------------------------------------------

    async def connect(self, service_name: str) -> None:
        self.service_name = service_name
        self.instance_id = secrets.token_hex(6)
        self._declare_lock = asyncio.Lock()
        self._consumers_lock = asyncio.Lock()
        self._link = BrokerLink(
            self.url,
            self.connection_options,
            who=service_name,
            safe_url=self._safe_url(),
            reconnect_interval=self.reconnect_interval,
            attempt_timeout=self.connect_timeout,
            outage_log_interval=self.outage_log_interval,
            publish_timeout=self.publish_timeout,
            on_up=self._on_up,
            waiting=lambda: self._publishing,
        )
        await self._link.open(self.connect_timeout)

    async def _on_up(self) -> None:
        # Each time the connection is up. aio-pika restores what was declared through
        # it; only what was never declared (the broker was down) is done here.
        assert self._link is not None
        if self._publisher is None:
            self._publisher = await self._link.open_channel()
        if self._consuming:
            await self._declare_consumers()

    async def _tasks_quorum(self, event: str) -> bool:
        # Whether gemstone.tasks.E is (now) a quorum queue: declared once per event.
        quorum = self._quorum.get(event)
        if quorum is None:
            assert self._link is not None
            probe = await self._link.open_channel(publisher_confirms=False)
            try:
                quorum = await tasks_queue_is_quorum(probe, event)
            finally:
                with contextlib.suppress(*CONNECTION_EXCEPTIONS):
                    await probe.close()
            if not quorum and event not in self._quorum:
                warn_classic_tasks_queue(event, self.service_name or "?")
            self._quorum[event] = quorum
        return quorum

    # -- publishing --------------------------------------------------------------------

    async def _exchange(self, key: str, event: str, broadcast: bool) -> AbstractExchange:
        # ``key``: the exchange's name (gemstone.broadcast.E or gemstone.tasks.E).
        assert self._declare_lock is not None
        assert self._publisher is not None
        async with self._declare_lock:
            if key not in self._exchanges:
                check_event_name(event)
                if broadcast:
                    found = await declare_broadcast_exchange(self._publisher, event)
                else:
                    quorum = await self._tasks_quorum(event)
                    found, _ = await declare_tasks_route(self._publisher, event, quorum=quorum)
                self._exchanges[key] = found
            return self._exchanges[key]

    async def _dead_letter_exchange(self, key: str, event: str, _: bool) -> AbstractExchange:
        assert self._declare_lock is not None
        assert self._publisher is not None
        async with self._declare_lock:
            if key not in self._exchanges:
                self._exchanges[key], _queue = await declare_dead_letter_route(
                    self._publisher, event
                )
            return self._exchanges[key]

    async def _publish_confirmed(
        self,
        what: tuple[str, str],
        key: str,
        declare: Callable[[str, str, bool], Awaitable[AbstractExchange]],
        broadcast: bool,
        message: aio_pika.Message,
        routing_key: str,
    ) -> None:
        # ``what``: how errors name the message ("event", its name); ``key``: the
        # exchange's key in ``self._exchanges``; ``declare(key, event, broadcast)``
        # declares it. Connected, with the exchange declared already, the attempt
        # publishes straight away, bounded by aio-pika's own publish timeout.
        link = self._link
        if link is None:
            raise EventPublishError("the RabbitMQ transport is not connected (service not running)")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_timeout
        delay = 0.05
        self._publishing += 1
        try:
            while True:
                try:
                    exchange = self._exchanges.get(key)
                    if exchange is None or not link.is_up:
                        async with asyncio.timeout(max(0.0, deadline - loop.time())):
                            await link.wait_up()
                            exchange = await declare(key, what[1], broadcast)
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
                        f"{self.publish_timeout:g} s"
                    ) from exc
                except ValueError as exc:  # a name RabbitMQ cannot take
                    raise EventPublishError(f"{what[0]} {what[1]!r}: {exc}") from exc
                except CONNECTION_EXCEPTIONS as exc:
                    # The connection dropped under the publication (the link notices
                    # soon after): try again, waiting for the link when it is down.
                    if loop.time() + delay >= deadline:
                        raise EventPublishError(
                            f"{what[0]} {what[1]!r} could not be published: {exc}"
                        ) from exc
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
        finally:
            self._publishing -= 1

    async def publish(self, event: OutgoingEvent) -> None:
        message = aio_pika.Message(
            event.body,
            content_type="application/json",
            headers=dict(event.headers),
            # Persistent for both kinds: a broadcast confirmed while an instance is
            # subscribed waits in its durable queue across a broker restart.
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
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
            broadcast,
            message,
            "" if broadcast else TASKS_ROUTING_KEY,
        )

    async def publish_dead_letter(
        self, event: str, original: AbstractIncomingMessage, headers: dict[str, Any]
    ) -> None:
        """Publish a copy of ``original`` to the dead-letter queue of ``event``."""
        message = aio_pika.Message(
            original.body,
            content_type=original.content_type or "application/json",
            headers=headers,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=original.message_id,
            app_id=original.app_id,
            timestamp=time.time(),
        )
        await self._publish_confirmed(
            ("dead letter of", event),
            f"{DEAD_LETTER_PREFIX}{event}",
            self._dead_letter_exchange,
            False,
            message,
            event,
        )

    # -- consuming ---------------------------------------------------------------------

    async def start_consuming(self, subscriptions: Sequence[Subscription]) -> None:
        for sub in subscriptions:
            check_event_name(sub.event_name)
        self._subscriptions = list(subscriptions)
        self._consuming = True
        if self._link is not None and self._link.is_up:
            try:
                await self._declare_consumers()
            except REFUSALS:
                raise  # the broker will not take the topology: start-up fails, saying why
            except CONNECTION_EXCEPTIONS:
                pass  # lost meanwhile: declared when the connection is back (_on_up)

    async def _declare_consumers(self) -> None:
        assert self._consumers_lock is not None
        async with self._consumers_lock:
            for sub in self._subscriptions:
                if sub.event_name not in self._declared and self._consuming:
                    await self._declare_subscription(sub)
                    self._declared.add(sub.event_name)

    async def _declare_subscription(self, sub: Subscription) -> None:
        link = self._link
        assert link is not None
        name = sub.event_name
        prefetch = self.prefetch_count or sub.concurrency
        opened: list[AbstractRobustChannel] = []
        mine_consumer: tuple[AbstractQueue, str] | None = None
        try:
            # Broadcasts: this instance's own durable queue, gone when it dies.
            channel = await link.open_channel()
            opened.append(channel)
            await channel.set_qos(prefetch_count=prefetch)
            await declare_dead_letter_route(channel, name)
            fanout = await declare_broadcast_exchange(channel, name)
            mine = await channel.declare_queue(
                instance_queue_name(name, self.service_name or "", self.instance_id),
                durable=True,
                arguments={"x-expires": max(1, round(self.broadcast_queue_expiry * 1000))},
            )
            await mine.bind(fanout)
            tag = await mine.consume(self._tracked(self._dispatch(sub, True, counted=False)))
            mine_consumer = (mine, tag)
            # One-of-N: the shared queue, on a channel of its own (its prefetch varies).
            quorum = await self._tasks_quorum(name)
            shared_channel = await link.open_channel()
            opened.append(shared_channel)
            _, shared = await declare_tasks_route(shared_channel, name, quorum=quorum)
            consumer = SharedQueueConsumer(
                shared_channel,
                shared,
                prefetch,
                counted=quorum,
                handle=self._dispatch(sub, False, counted=quorum),
                wrap=self._tracked,
            )
            await consumer.start()
        except BaseException:
            for opened_channel in opened:
                await _bounded(opened_channel.close(), 1.0)
            raise
        self._broadcast.append(mine_consumer)
        self._shared.append(consumer)
        self._channels.extend(opened)

    def _dispatch(self, sub: Subscription, broadcast: bool, *, counted: bool) -> _Handle:
        callback, event_name, publish = sub.callback, sub.event_name, self.publish_dead_letter

        async def dispatch(message: AbstractIncomingMessage) -> None:
            await callback(AmqpDelivery(message, event_name, broadcast, publish, counted=counted))

        return dispatch

    def _tracked(self, handle: _Handle) -> _Handle:
        inflight = self._inflight

        async def on_message(message: AbstractIncomingMessage) -> None:
            # aio-pika runs each delivery in a task of its own: track it, so that
            # stop_consuming can wait for the handlers still running.
            forget_owner()  # handlers are user code: their own aio-pika lines stay
            task = asyncio.current_task()
            assert task is not None
            inflight.add(task)
            try:
                await handle(message)
            finally:
                try:
                    if not message.processed:  # not settled: give it back
                        with contextlib.suppress(*CONNECTION_EXCEPTIONS):
                            await asyncio.shield(message.nack(requeue=True))
                finally:
                    inflight.discard(task)

        return on_message

    async def stop_consuming(self, grace_period: float) -> None:
        self._consuming = False
        # Round trips to a broker that is down would wait for it: bound them.
        rpc = 5.0 if self.connected else 0.5
        for consumer in self._shared:
            await consumer.stop(rpc)
        for queue, tag in self._broadcast:
            await _bounded(queue.cancel(tag), rpc)
        if self._inflight:
            _, late = await asyncio.wait(set(self._inflight), timeout=grace_period)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        # This instance's broadcast queues go with it (their expiry covers a crash).
        rpc = 5.0 if self.connected else 0.5
        for queue, _tag in self._broadcast:
            await _bounded(queue.delete(if_unused=False, if_empty=False), rpc)
        for channel in self._channels:
            await _bounded(channel.close(), rpc)
        self._broadcast.clear()
        self._shared.clear()
        self._declared.clear()
        self._channels.clear()

    async def close(self) -> None:
        if self._consuming or self._broadcast or self._shared:
            await self.stop_consuming(0)
        link, self._link = self._link, None
        if link is not None:
            await link.close()
        self._publisher = None
        self._exchanges.clear()
        self._quorum.clear()

    def __repr__(self) -> str:
        return f"RabbitMqEventTransport({self._safe_url()!r})"
