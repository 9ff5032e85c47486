"""A running service's side of events: its transports, ``emit_event``, its consumers.

:func:`make_app` enters two cleanup contexts from here, around the lifecycle hooks:
:meth:`EventRuntime.transports_ctx` (connect before ``on_service_start``; on shutdown
await the publishes still pending, then close) and :meth:`EventRuntime.consumers_ctx`
(start consuming after ``on_service_start``; on shutdown stop first, letting in-flight
handlers finish).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import TYPE_CHECKING, Any

from ..errors import EventPublishError, ServiceConfigurationError
from ..event._base import BaseEventTransport, OutgoingEvent, Subscription
from ..event._dispatch import BoundHandler, EventDispatcher, RunBlocking
from ..event._memory import InMemoryEventTransport
from ..event._pending import PublicationBound, RateLimitedLog
from ..event._publish import PublishResult, WaitingPublication
from ..observability._health import CheckResult, ReadinessState
from ..observability._tracing import start_span

if TYPE_CHECKING:
    from aiohttp import web

    from ._microservice import MicroService

__all__ = ["EventRuntime", "emit"]


class EventRuntime:
    """The events machinery of one running service (created by ``make_app``)."""

    def __init__(self, service: MicroService, run_blocking: RunBlocking) -> None:
        self.service = service
        self.run_blocking = run_blocking
        for module in service.modules:
            module.set_microservice(service)
        self.handlers = BoundHandler.bind([service, *service.modules])
        transports = list(service.event_transports)
        self.transports: list[BaseEventTransport] = transports or [InMemoryEventTransport()]
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._threaded: set[concurrent.futures.Future[None]] = set()
        self._lock = threading.Lock()
        # Publications under way are bounded (the broker may be down: they pile up).
        self.bound = PublicationBound(
            service.max_pending_publications,
            room_timeout=_room_timeout(self.transports),
        )
        self._failed_log = RateLimitedLog(service.logger, logging.ERROR)
        self._dropped_log = RateLimitedLog(service.logger, logging.WARNING)

    # -- cleanup contexts --------------------------------------------------------------

    async def transports_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """Connect the transports; on exit await pending publishes, then close them."""
        self.loop = asyncio.get_running_loop()
        opened: list[BaseEventTransport] = []
        try:
            for transport in self.transports:
                await transport.connect(self.service.name or "")
                opened.append(transport)
            self.service._event_runtime = self
            self._register_checks(app)
            yield
            await self.drain()
        finally:
            self.service._event_runtime = None
            for transport in reversed(opened):
                await transport.close()
            self.loop = None

    async def consumers_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """Start consuming the handled events; on exit stop, letting handlers finish."""
        concurrency = self.service.max_parallel_blocking_tasks
        started: list[BaseEventTransport] = []
        try:
            for transport in self.transports if self.handlers else ():
                subscriptions = [
                    Subscription(
                        name,
                        EventDispatcher(
                            name,
                            handlers,
                            transport,
                            self.run_blocking,
                            self.service.logger,
                            metrics=self.service.metrics,
                            tracer=self.service.tracer,
                        ),
                        concurrency,
                    )
                    for name, handlers in self.handlers.items()
                ]
                started.append(transport)
                await transport.start_consuming(subscriptions)
            yield
        finally:
            for transport in started:
                await transport.stop_consuming(self.service.shutdown_grace_period)

    def _register_checks(self, app: web.Application) -> None:
        """Add one readiness check per transport, reported but not required.

        Answering calls needs no broker, and every instance shares it: ``/ready``
        fails while a transport is down only when ``ready_required_checks`` names its
        check (``"events: *"``), see ``docs/observability.md``.
        """
        from ..observability._health import READINESS_KEY

        readiness: ReadinessState | None = app.get(READINESS_KEY)
        if readiness is None:
            return
        for transport in self.transports:
            readiness.optional.append(_transport_check(transport))

    # -- publishing --------------------------------------------------------------------

    def _send(self, event: OutgoingEvent) -> Coroutine[Any, Any, Any]:
        # A plain function: with one transport, its publish() itself, no layer around it.
        if len(self.transports) == 1:
            return self.transports[0].publish(event)
        return self._send_to_all(event)

    async def _send_to_all(self, event: OutgoingEvent) -> None:
        await asyncio.gather(*(t.publish(event) for t in self.transports))

    def _publication(self, event: OutgoingEvent) -> Coroutine[Any, Any, Any]:
        # What publishing ``event`` runs: the transports' publish, in a span when tracing.
        tracer = self.service.tracer
        if tracer is None:
            return self._send(event)
        return self._publish_traced(event, tracer)

    async def _publish_traced(self, event: OutgoingEvent, tracer: Any) -> None:
        # A PRODUCER span, child of the emitting call's span; its W3C context travels
        # in the message headers to the consumers.
        headers = dict(event.headers)
        with start_span(
            tracer,
            f"{event.name} publish",
            kind="producer",
            carrier_out=headers,
            attributes={
                "messaging.operation": "publish",
                "messaging.destination.name": event.name,
                "gemstone.event.broadcast": event.broadcast,
            },
        ):
            await self._send(dataclasses.replace(event, headers=headers))

    def submit(self, event: OutgoingEvent) -> PublishResult:
        """Publish ``event`` on every transport, from the loop or from any thread."""
        loop = self.loop
        if loop is None:
            raise EventPublishError(
                f"cannot emit event {event.name!r}: service {self.service.name!r} is not running"
            )
        if not self.bound.try_acquire():
            # No room: it starts if awaited (waiting for room), else it is dropped.
            return WaitingPublication(
                loop, lambda: self._publish_when_room(event), lambda: self._dropped(event)
            )
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return PublishResult(self._start(event))
        future = asyncio.run_coroutine_threadsafe(self._publication(event), loop)
        with self._lock:
            self._threaded.add(future)
        future.add_done_callback(self._thread_done(event))
        return PublishResult(future)

    def _start(self, event: OutgoingEvent) -> asyncio.Future[Any]:
        # On the loop, holding a place of the bound; the done callback frees it, counts
        # and logs the outcome.
        task: asyncio.Future[Any] = asyncio.get_running_loop().create_task(self._publication(event))
        self._tasks.add(task)
        task.add_done_callback(self._task_done(event))
        return task

    async def _publish_when_room(self, event: OutgoingEvent) -> None:
        # An awaited publication past the bound: wait for room, then publish.
        try:
            await self.bound.acquire(f"event {event.name!r}")
        except EventPublishError as exc:
            self._settled(event, exc)
            raise
        await self._start(event)

    def _dropped(self, event: OutgoingEvent) -> None:
        # A publication past the bound discarded without being awaited (any thread).
        total = self.bound.count_dropped()
        self.service.metrics.event_publish_dropped(event.name)
        self._dropped_log(
            "event %r dropped: %d publications are waiting for the broker "
            "(max_pending_publications); await emit_event() to wait for room (%d dropped "
            "since the service started)",
            event.name,
            self.bound.limit,
            total,
        )

    def _settled(self, event: OutgoingEvent, exc: BaseException | None) -> None:
        # Metrics and the error log line of one finished publication (not a cancelled
        # one); the log line is rate-limited, the metric counts each.
        if exc is None:
            self.service.metrics.event_published(event.name)
        else:
            self.service.metrics.event_publish_failed(event.name)
            self._failed_log("event %r could not be published: %s", event.name, exc)

    def _task_done(self, event: OutgoingEvent) -> Any:
        def done(task: asyncio.Future[Any]) -> None:
            self._tasks.discard(task)
            self.bound.release()
            if not task.cancelled():
                self._settled(event, task.exception())

        return done

    def _thread_done(self, event: OutgoingEvent) -> Any:
        def done(future: concurrent.futures.Future[None]) -> None:
            with self._lock:
                self._threaded.discard(future)
            self.bound.release()
            if not future.cancelled():
                self._settled(event, future.exception())

        return done

    async def drain(self) -> None:
        """Wait for every publication still under way (failures are logged, not raised)."""
        while True:
            with self._lock:
                waiting = [*self._tasks, *(asyncio.wrap_future(f) for f in self._threaded)]
            if not waiting:
                return
            await asyncio.gather(*waiting, return_exceptions=True)


def _room_timeout(transports: list[BaseEventTransport]) -> float:
    # How long an awaited publication past the bound waits for room: the transports'
    # publish timeout (the longest), 30 s for transports without one.
    found = [
        float(timeout)
        for t in transports
        if isinstance(timeout := getattr(t, "publish_timeout", None), int | float)
    ]
    return max(found, default=30.0)


def _transport_check(transport: BaseEventTransport) -> Any:
    label = type(transport).__name__

    async def transport_connected() -> CheckResult:
        ok, detail = transport.readiness()
        return CheckResult(f"events: {label}", ok, detail)

    return transport_connected


def emit(service: MicroService, name: str, body: Any, *, broadcast: bool) -> PublishResult:
    """Implementation of :meth:`MicroService.emit_event`."""
    if not isinstance(name, str) or not name:
        raise ServiceConfigurationError(f"invalid event name: {name!r}")
    event = OutgoingEvent.create(name, body, broadcast=bool(broadcast), service=service.name or "")
    runtime: EventRuntime | None = service._event_runtime
    if runtime is None:
        raise EventPublishError(
            f"cannot emit event {name!r}: service {service.name!r} is not running "
            "(events can be emitted once its transports are open, from on_service_start on)"
        )
    return runtime.submit(event)
