"""Serving one or several services for a test, with a registry and captured events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, TypeVarTuple, cast

from ..client._remote_service import RemoteService
from ..event._base import BaseEventTransport
from ..event._memory import InMemoryEventBus, InMemoryEventTransport
from ..protocol._decorators import exposed_method
from ..registry import ServiceRegistry
from ..server._microservice import MicroService
from ._events import EventCapture, retry_settings
from ._serving import serving

__all__ = ["ServiceKit"]

_Services = TypeVarTuple("_Services")


class ServiceKit:
    """Serves services for one test and stops them all when it ends.

    Every service served here gets its events through one test transport: the test's
    own in-memory bus, or the RabbitMQ broker at ``amqp_url`` (the same tests then run
    against a real broker). Both record into :attr:`events`. The transport takes the
    retry settings of the service's first declared transport.

    Args:
        events: Where publications and handled events are recorded.
        bus: The in-memory bus of the test (used when ``amqp_url`` is ``None``).
        amqp_url: A RabbitMQ URL to carry the events instead of ``bus``.
        timeout: Seconds a service may take to start, or to register.
    """

    def __init__(
        self,
        events: EventCapture,
        bus: InMemoryEventBus,
        amqp_url: str | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        self.events = events
        self.bus = bus
        self.amqp_url = amqp_url
        self.timeout = timeout
        self._stack = contextlib.AsyncExitStack()
        self._registry: _TestRegistry | None = None
        self._clients: dict[int, RemoteService] = {}
        self._served: list[MicroService] = []

    @property
    def registry(self) -> ServiceRegistry | None:
        """The registry served for this test (``None`` until a service needs one)."""
        return self._registry

    def _transport(self, declared: Sequence[BaseEventTransport]) -> BaseEventTransport:
        options = retry_settings(declared)
        if self.amqp_url is None:
            return self.events.wrap(InMemoryEventTransport(bus=self.bus, **options))
        from ..event._rabbitmq import RabbitMqEventTransport

        return self.events.wrap(RabbitMqEventTransport(self.amqp_url, **options))

    async def _ensure_registry(self) -> _TestRegistry:
        if self._registry is None:
            self._registry = await self._stack.enter_async_context(serving(_TestRegistry()))
        return self._registry

    async def _wait_registered(self, registry: _TestRegistry, service: MicroService) -> None:
        # The first heartbeat goes out as the service starts; wait until it has landed.
        name, url = service.name or "", service.accessible_at
        try:
            async with asyncio.timeout(self.timeout), registry.pinged:
                while url not in await registry.locate_service(name):
                    await registry.pinged.wait()
        except TimeoutError:
            raise TimeoutError(
                f"{name} did not register with the test registry within {self.timeout} s"
            ) from None

    async def serve(self, *services: *_Services, registry: bool = True) -> tuple[*_Services]:
        """Serve ``services`` (in order) until the test ends; return them.

        Each listens on 127.0.0.1 and a free port (``service.accessible_at``). With
        ``registry`` (the default), a :class:`~gemstone_aio.registry.ServiceRegistry` is
        served first and every service registers with it before this returns, so
        ``get_service`` finds them at once.

        Raises:
            TypeError: Something given is not a service.
            TimeoutError: A service did not start, or did not register, in time.
        """
        served = cast(tuple[MicroService, ...], services)
        for service in served:
            if not isinstance(service, MicroService):
                raise TypeError(f"serve() takes MicroService instances, got {service!r}")
        registry_service = await self._ensure_registry() if registry else None
        if self.amqp_url is not None:
            await _purge_queues(self.amqp_url, _subscribed(served))
        for service in served:
            service.event_transports = [self._transport(service.event_transports)]
            if registry_service is not None:
                service.service_registry_urls = [registry_service.accessible_at or ""]
            if service.unregister_propagation_delay is None:
                # Nobody caches a test service's address: it stops without lingering.
                service.unregister_propagation_delay = 0
            await self._stack.enter_async_context(serving(service, timeout=self.timeout))
            self._served.append(service)
            if registry_service is not None:
                await self._wait_registered(registry_service, service)
        return services

    def client(self, service: MicroService, **options: Any) -> RemoteService:
        """A :class:`~gemstone_aio.client.RemoteService` for a served service.

        One per service (``options`` are used the first time: ``token=``, ``timeout=``,
        ...); closed when the test ends.
        """
        found = self._clients.get(id(service))
        if found is None:
            if not any(served is service for served in self._served):
                raise ValueError(f"{service.name} is not served (serve it first)")
            found = RemoteService(service.accessible_at or "", **options)
            self._clients[id(service)] = found
        return found

    async def aclose(self) -> None:
        """Close the clients, then stop every service (the last served first)."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()
        await self._stack.aclose()


class _TestRegistry(ServiceRegistry):
    """The reference registry, telling the kit when an instance pinged."""

    def __init__(self) -> None:
        super().__init__()
        self.pinged = asyncio.Condition()

    @exposed_method(private=True)
    async def ping(self, name: str, url: str) -> bool:
        """Record that the instance of ``name`` at ``url`` is alive; returns ``true``."""
        alive = await super().ping(name, url)
        async with self.pinged:
            self.pinged.notify_all()
        return alive


def _subscribed(services: Sequence[MicroService]) -> set[str]:
    names: set[str] = set()
    for service in services:
        owners: list[Any] = [service, *service.modules]
        for owner in owners:
            names.update(type(owner).__gemstone_events__)
    return names


async def _purge_queues(url: str, events: set[str]) -> None:
    """Empty the task and dead-letter queues of ``events`` on the broker.

    One-of-N events wait durably for a subscriber, so a message left by an earlier test
    (or an earlier run) would reach this test's services: they start with empty queues.
    """
    if not events:
        return
    import aio_pika
    from aio_pika.exceptions import ChannelClosed

    from ..event._rabbitmq import DEAD_LETTER_PREFIX, TASKS_PREFIX

    connection = await aio_pika.connect(url)
    async with connection:
        for event in sorted(events):
            for queue_name in (TASKS_PREFIX + event, DEAD_LETTER_PREFIX + event):
                channel = await connection.channel()
                try:
                    queue = await channel.declare_queue(queue_name, passive=True)
                    await queue.purge()
                except ChannelClosed:  # no such queue: nothing to purge
                    continue
                await channel.close()
