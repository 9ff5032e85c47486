"""Capturing what services publish and handle during a test, and waiting for it.

:class:`EventCapture` records every event published and every delivery settled by the
transports it wraps (:meth:`EventCapture.wrap`). The wrapper sits between the service and
its real transport (in memory or RabbitMQ), so the same assertions hold on both.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..event._base import BaseEventTransport, Delivery, OutgoingEvent, Subscription
from ..event._memory import wake_all

__all__ = [
    "CapturingTransport",
    "EventCapture",
    "EventNotHandledError",
    "HandledEvent",
    "PublishedEvent",
]

Outcome = Literal["ok", "dead_lettered"]


class EventNotHandledError(AssertionError):
    """An awaited event was not handled in time, or its handling gave up.

    An ``AssertionError``, so pytest reports it as a failed expectation.
    """


@dataclass(frozen=True, slots=True)
class PublishedEvent:
    """One event a service published (the transport confirmed it).

    Attributes:
        name: The event name.
        body: The body, decoded from its JSON.
        broadcast: ``True`` for every subscriber, ``False`` for exactly one.
        service: The name of the emitting service.
    """

    name: str
    body: Any
    broadcast: bool
    service: str


@dataclass(frozen=True, slots=True)
class HandledEvent:
    """One delivery a service settled.

    Attributes:
        name: The event name.
        body: The body, decoded from its JSON (``None`` if it was not JSON).
        service: The name of the service whose handlers ran.
        outcome: ``"ok"`` (every handler succeeded) or ``"dead_lettered"`` (they gave up,
            or the body was invalid).
        reason: Why it was dead-lettered (``None`` when ok).
        attempts: How many times the handlers ran before it was dead-lettered.
    """

    name: str
    body: Any
    service: str
    outcome: Outcome
    reason: str | None = None
    attempts: int = 1


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


class EventCapture:
    """What the services of one test published and handled, with waiters.

    Records arrive from the services' event loops (any thread); the waiters run on the
    test's loop. Every list is in the order things happened.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._published: list[PublishedEvent] = []
        self._handled: list[HandledEvent] = []
        self._wakers: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    # -- recording ---------------------------------------------------------------------

    def wrap(self, transport: BaseEventTransport) -> CapturingTransport:
        """Return ``transport`` wrapped so that this capture records its traffic."""
        return CapturingTransport(transport, self)

    def record_published(self, event: OutgoingEvent) -> None:
        """Record an event a transport confirmed."""
        record = PublishedEvent(event.name, _decode(event.body), event.broadcast, event.service)
        with self._lock:
            self._published.append(record)
        self._wake()

    def record_handled(self, record: HandledEvent) -> None:
        """Record a settled delivery."""
        with self._lock:
            self._handled.append(record)
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            wakers = list(self._wakers)
        wake_all(wakers)

    # -- reading -----------------------------------------------------------------------

    def published(self, name: str | None = None) -> list[PublishedEvent]:
        """The events published so far (of event ``name`` only, if given)."""
        with self._lock:
            return [e for e in self._published if name is None or e.name == name]

    def published_bodies(self, name: str) -> list[Any]:
        """The bodies of the ``name`` events published so far, oldest first."""
        return [e.body for e in self.published(name)]

    def handled(
        self, name: str | None = None, *, outcome: Outcome | None = "ok"
    ) -> list[HandledEvent]:
        """The deliveries settled so far: ``outcome`` ``"ok"`` by default, ``None`` for all."""
        with self._lock:
            return [
                e
                for e in self._handled
                if (name is None or e.name == name) and (outcome is None or e.outcome == outcome)
            ]

    def dead_lettered(self, name: str | None = None) -> list[HandledEvent]:
        """The deliveries whose handling gave up (or whose body was invalid)."""
        return self.handled(name, outcome="dead_lettered")

    # -- waiting -----------------------------------------------------------------------

    async def _wait(
        self, ready: Callable[[], Any], timeout: float, describe: Callable[[], str]
    ) -> Any:
        """Wait until ``ready()`` returns something truthy; return it."""
        waker = asyncio.Event()
        with self._lock:
            self._wakers.append((asyncio.get_running_loop(), waker))
        try:
            async with asyncio.timeout(timeout):
                while not (found := ready()):
                    waker.clear()
                    if found := ready():
                        break
                    await waker.wait()
                return found
        except TimeoutError:
            raise EventNotHandledError(f"{describe()} within {timeout} s") from None
        finally:
            with self._lock:
                self._wakers = [(lp, ev) for lp, ev in self._wakers if ev is not waker]

    def _summary(self, name: str) -> str:
        published = len(self.published(name))
        settled = self.handled(name, outcome=None)
        ok = sum(1 for e in settled if e.outcome == "ok")
        return f"(so far: {published} published, {ok} handled, {len(settled) - ok} dead-lettered)"

    async def wait_handled(
        self, name: str, *, count: int = 1, timeout: float = 10.0
    ) -> list[HandledEvent]:
        """Wait until ``count`` deliveries of ``name`` were handled successfully.

        Counted from the start of the test. Returns them, oldest first.

        Raises:
            EventNotHandledError: Fewer were handled within ``timeout`` seconds, or a
                delivery of ``name`` was dead-lettered (its reason is in the message).
        """

        def ready() -> list[HandledEvent] | None:
            failed = self.dead_lettered(name)
            if failed:
                raise EventNotHandledError(
                    f"event {name!r} was dead-lettered by {failed[0].service}: {failed[0].reason}"
                )
            done = self.handled(name)
            return done if len(done) >= count else None

        return list(
            await self._wait(
                ready,
                timeout,
                lambda: f"event {name!r} was not handled {count} time(s) {self._summary(name)}",
            )
        )

    async def wait_dead_lettered(
        self, name: str, *, count: int = 1, timeout: float = 10.0
    ) -> list[HandledEvent]:
        """Wait until ``count`` deliveries of ``name`` were dead-lettered; return them.

        Raises:
            EventNotHandledError: Fewer were dead-lettered within ``timeout`` seconds.
        """

        def ready() -> list[HandledEvent] | None:
            found = self.dead_lettered(name)
            return found if len(found) >= count else None

        return list(
            await self._wait(
                ready,
                timeout,
                lambda: (
                    f"event {name!r} was not dead-lettered {count} time(s) {self._summary(name)}"
                ),
            )
        )

    async def wait_published(
        self, name: str, *, count: int = 1, timeout: float = 10.0
    ) -> list[PublishedEvent]:
        """Wait until ``count`` events ``name`` were published; return them.

        Raises:
            EventNotHandledError: Fewer were published within ``timeout`` seconds.
        """

        def ready() -> list[PublishedEvent] | None:
            found = self.published(name)
            return found if len(found) >= count else None

        return list(
            await self._wait(
                ready,
                timeout,
                lambda: f"event {name!r} was not published {count} time(s) {self._summary(name)}",
            )
        )


class _CapturingDelivery(Delivery):
    """A delivery that tells the capture how it was settled."""

    def __init__(self, inner: Delivery, capture: EventCapture, service: str) -> None:
        self.event_name = inner.event_name
        self.body = inner.body
        self.headers = inner.headers
        self.broadcast = inner.broadcast
        self._inner = inner
        self._capture = capture
        self._service = service

    async def ack(self) -> None:
        await self._inner.ack()
        self._capture.record_handled(
            HandledEvent(self.event_name, _decode(self.body), self._service, "ok")
        )

    async def dead_letter(self, reason: str, attempts: int) -> None:
        await self._inner.dead_letter(reason, attempts)
        self._capture.record_handled(
            HandledEvent(
                self.event_name,
                _decode(self.body),
                self._service,
                "dead_lettered",
                reason,
                attempts,
            )
        )

    async def requeue(self) -> None:
        await self._inner.requeue()


class CapturingTransport(BaseEventTransport):
    """A transport that hands everything to ``inner`` and tells ``capture`` what happened.

    It takes ``inner``'s retry settings, so handlers are retried and dead-lettered as
    they would be without it.

    Args:
        inner: The transport that really carries the events.
        capture: Where publications and settled deliveries are recorded.
    """

    def __init__(self, inner: BaseEventTransport, capture: EventCapture) -> None:
        super().__init__(
            max_attempts=inner.max_attempts,
            retry_delay=inner.retry_delay,
            max_retry_delay=inner.max_retry_delay,
        )
        self.inner = inner
        self.capture = capture

    def clone(self) -> CapturingTransport:
        return CapturingTransport(self.inner.clone(), self.capture)

    def retry_backoff(self, attempt: int) -> float:
        return self.inner.retry_backoff(attempt)

    def readiness(self) -> tuple[bool, str | None]:
        return self.inner.readiness()

    async def connect(self, service_name: str) -> None:
        self.service_name = service_name
        await self.inner.connect(service_name)

    async def publish(self, event: OutgoingEvent) -> None:
        await self.inner.publish(event)
        self.capture.record_published(event)

    def _watched(self, subscription: Subscription) -> Subscription:
        callback, capture, service = subscription.callback, self.capture, self.service_name or ""

        async def watched(delivery: Delivery) -> None:
            await callback(_CapturingDelivery(delivery, capture, service))

        return Subscription(subscription.event_name, watched, subscription.concurrency)

    async def start_consuming(self, subscriptions: Sequence[Subscription]) -> None:
        await self.inner.start_consuming([self._watched(s) for s in subscriptions])

    async def stop_consuming(self, grace_period: float) -> None:
        await self.inner.stop_consuming(grace_period)

    async def close(self) -> None:
        await self.inner.close()

    def __repr__(self) -> str:
        return f"CapturingTransport({self.inner!r})"


def retry_settings(transports: Sequence[BaseEventTransport]) -> Mapping[str, Any]:
    """The retry settings of a service's first transport (the defaults if it has none)."""
    if not transports:
        return {}
    first = transports[0]
    return {
        "max_attempts": first.max_attempts,
        "retry_delay": first.retry_delay,
        "max_retry_delay": first.max_retry_delay,
    }
