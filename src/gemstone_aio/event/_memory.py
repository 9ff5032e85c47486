"""The in-memory event transport: the embedded default, with RabbitMQ's semantics.

All in-memory transports of a process share one :class:`InMemoryEventBus` (unless given
their own), so services running in one process exchange events without a broker. The
bus mirrors the RabbitMQ topology: a broadcast event is copied into the inbox of every
subscribing instance running at that moment; a one-of-N event goes into one durable
queue per event (created by the first publisher or subscriber), from which competing
instances take messages; a message taken and not settled goes back to the front of that
queue. Bodies travel encoded, so handlers never share objects with the emitter.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._base import BaseEventTransport, Delivery, OutgoingEvent, Subscription

__all__ = [
    "DeadLetter",
    "InMemoryEventBus",
    "InMemoryEventTransport",
    "current_default_bus",
    "default_bus",
    "set_default_bus",
]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that was given up on.

    Attributes:
        event_name: Its event.
        body: Its encoded body, as received.
        headers: Its headers, as received.
        reason: Why it was dead-lettered (handler error, invalid body, ...).
        attempts: How many times its handlers ran (0 for undecodable or invalid bodies).
    """

    event_name: str
    body: bytes
    headers: Mapping[str, Any]
    reason: str
    attempts: int


@dataclass(frozen=True, slots=True)
class _Message:
    event_name: str
    body: bytes
    headers: Mapping[str, Any]
    broadcast: bool


class _Inbox:
    """A FIFO of messages that consumers on any event loop may wait on."""

    def __init__(self) -> None:
        self._items: collections.deque[_Message] = collections.deque()
        self._lock = threading.Lock()
        self._wakers: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def __len__(self) -> int:
        return len(self._items)

    def put(self, message: _Message, *, front: bool = False) -> None:
        with self._lock:
            if front:
                self._items.appendleft(message)
            else:
                self._items.append(message)
        self.notify()

    def notify(self) -> None:
        with self._lock:
            wakers = list(self._wakers)
        wake_all(wakers)

    def take(self) -> _Message | None:
        with self._lock:
            return self._items.popleft() if self._items else None

    def attach(self, waker: asyncio.Event) -> None:
        with self._lock:
            self._wakers.append((asyncio.get_running_loop(), waker))

    def detach(self, waker: asyncio.Event) -> None:
        with self._lock:
            self._wakers = [(lp, ev) for lp, ev in self._wakers if ev is not waker]


class InMemoryEventBus:
    """The queues and dead letters of in-memory events (one per process by default).

    Thread-safe: services on different event loops of one process may share it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._broadcast: dict[str, list[_Inbox]] = {}
        self._tasks: dict[str, _Inbox] = {}
        self._dead: dict[str, list[DeadLetter]] = {}
        self._dead_waiters = _Inbox()  # never holds items: only wakes waiters

    def publish(self, event: OutgoingEvent) -> None:
        """Route ``event`` like RabbitMQ would (see the module docstring)."""
        message = _Message(event.name, event.body, dict(event.headers), event.broadcast)
        if event.broadcast:
            with self._lock:
                inboxes = list(self._broadcast.get(event.name, ()))
            for inbox in inboxes:
                inbox.put(message)
        else:
            self.task_queue(event.name).put(message)

    def task_queue(self, event_name: str) -> _Inbox:
        """The durable one-of-N queue of ``event_name`` (created on first use)."""
        with self._lock:
            return self._tasks.setdefault(event_name, _Inbox())

    def pending(self, event_name: str) -> int:
        """How many one-of-N messages of ``event_name`` wait for a consumer."""
        with self._lock:
            inbox = self._tasks.get(event_name)
        return len(inbox) if inbox is not None else 0

    def has_subscribers(self, event_name: str) -> bool:
        """Whether a service of this process consumes ``event_name`` now."""
        with self._lock:
            return bool(self._broadcast.get(event_name))

    def add_broadcast_inbox(self, event_name: str) -> _Inbox:
        """Create the private broadcast inbox of one subscribing instance."""
        inbox = _Inbox()
        with self._lock:
            self._broadcast.setdefault(event_name, []).append(inbox)
        return inbox

    def remove_broadcast_inbox(self, event_name: str, inbox: _Inbox) -> None:
        """Delete an instance's broadcast inbox (like an auto-delete queue)."""
        with self._lock:
            inboxes = self._broadcast.get(event_name, [])
            if inbox in inboxes:
                inboxes.remove(inbox)

    def add_dead_letter(self, letter: DeadLetter) -> None:
        """Store a dead-lettered message."""
        with self._lock:
            self._dead.setdefault(letter.event_name, []).append(letter)
        self._dead_waiters.notify()

    async def wait_dead_letters(
        self, event_name: str, count: int, timeout: float = 10.0
    ) -> list[DeadLetter]:
        """Wait until ``event_name`` has at least ``count`` dead letters and return them.

        Raises:
            TimeoutError: Fewer arrived within ``timeout`` seconds.
        """
        waker = asyncio.Event()
        self._dead_waiters.attach(waker)
        try:
            async with asyncio.timeout(timeout):
                while len(found := self.dead_letters(event_name)) < count:
                    waker.clear()
                    if len(self.dead_letters(event_name)) < count:
                        await waker.wait()
                return found
        finally:
            self._dead_waiters.detach(waker)

    def dead_letters(self, event_name: str) -> list[DeadLetter]:
        """The dead-lettered messages of ``event_name``, oldest first."""
        with self._lock:
            return list(self._dead.get(event_name, ()))


default_bus = InMemoryEventBus()
"""The process's bus: what every :class:`InMemoryEventTransport` uses unless given another."""

_current_default = default_bus


def current_default_bus() -> InMemoryEventBus:
    """The bus a new :class:`InMemoryEventTransport` without ``bus=`` uses."""
    return _current_default


def set_default_bus(bus: InMemoryEventBus) -> InMemoryEventBus:
    """Make ``bus`` the one new transports without ``bus=`` use; return the previous one.

    The test kit gives each test a bus of its own this way, so an event left over by one
    test is never delivered in the next.
    """
    global _current_default
    previous, _current_default = _current_default, bus
    return previous


class _MemoryDelivery(Delivery):
    def __init__(self, message: _Message, bus: InMemoryEventBus, source: _Inbox) -> None:
        self.event_name = message.event_name
        self.body = message.body
        self.headers = message.headers
        self.broadcast = message.broadcast
        self.settled = False
        self._message = message
        self._bus = bus
        self._source = source

    async def ack(self) -> None:
        self.settled = True

    async def dead_letter(self, reason: str, attempts: int) -> None:
        self.settled = True
        self._bus.add_dead_letter(
            DeadLetter(self.event_name, self.body, self.headers, reason, attempts)
        )

    async def requeue(self) -> None:
        self.settled = True
        if not self.broadcast:
            self._source.put(self._message, front=True)


class InMemoryEventTransport(BaseEventTransport):
    """Events between services of one process, with the semantics of RabbitMQ.

    This is what a service uses when ``event_transports`` is empty. It reaches only the
    services of the same process: the first time it publishes an event that nothing in
    the process subscribes to, it logs a WARNING saying how to configure a broker.

    Args:
        bus: The bus to use (default: the process-wide :data:`default_bus`, or the
            current test's bus under the test kit).
        **retry_options: ``max_attempts``, ``retry_delay``, ``max_retry_delay``
            (see :class:`BaseEventTransport`).
    """

    def __init__(self, *, bus: InMemoryEventBus | None = None, **retry_options: Any) -> None:
        super().__init__(**retry_options)
        self._chosen_bus = bus
        self.reset()

    def reset(self) -> None:
        super().reset()
        # A transport declared on a class is cloned per instance: a clone made during a
        # test takes that test's bus, unless a bus was given explicitly.
        self.bus = self._chosen_bus if self._chosen_bus is not None else current_default_bus()
        self._warned: set[str] = set()
        self._pumps: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._inboxes: list[tuple[str, _Inbox]] = []

    def readiness(self) -> tuple[bool, str | None]:
        return True, "in memory"

    async def connect(self, service_name: str) -> None:
        self.service_name = service_name

    async def publish(self, event: OutgoingEvent) -> None:
        if event.name not in self._warned and not self.bus.has_subscribers(event.name):
            self._warned.add(event.name)
            _warn_no_subscriber(event.name, self.service_name or event.service)
        self.bus.publish(event)

    async def start_consuming(self, subscriptions: Sequence[Subscription]) -> None:
        for sub in subscriptions:
            if sub.event_name in {name for name, _ in self._inboxes}:
                continue
            # One private inbox for broadcasts, plus the shared one-of-N queue.
            private = self.bus.add_broadcast_inbox(sub.event_name)
            self._inboxes.append((sub.event_name, private))
            shared = self.bus.task_queue(sub.event_name)
            slots = asyncio.Semaphore(sub.concurrency)
            for inbox in (private, shared):
                self._pumps.append(asyncio.create_task(self._pump(inbox, sub, slots)))

    async def _pump(self, inbox: _Inbox, sub: Subscription, slots: asyncio.Semaphore) -> None:
        waker = asyncio.Event()
        inbox.attach(waker)
        try:
            while True:
                await slots.acquire()
                message = inbox.take()
                while message is None:
                    waker.clear()
                    message = inbox.take()
                    if message is None:
                        try:
                            await waker.wait()
                        except asyncio.CancelledError:
                            slots.release()
                            raise
                task = asyncio.create_task(self._handle(message, inbox, sub, slots))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
        finally:
            inbox.detach(waker)

    async def _handle(
        self, message: _Message, inbox: _Inbox, sub: Subscription, slots: asyncio.Semaphore
    ) -> None:
        delivery = _MemoryDelivery(message, self.bus, inbox)
        try:
            await sub.callback(delivery)
        finally:
            if not delivery.settled:
                await delivery.requeue()
            slots.release()

    async def stop_consuming(self, grace_period: float) -> None:
        for task in self._pumps:
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        self._pumps.clear()
        for name, inbox in self._inboxes:
            self.bus.remove_broadcast_inbox(name, inbox)
        self._inboxes.clear()
        if self._inflight:
            _, late = await asyncio.wait(set(self._inflight), timeout=grace_period)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def close(self) -> None:
        if self._pumps:
            await self.stop_consuming(0)

    def __repr__(self) -> str:
        which = "default bus" if self.bus is default_bus else "private bus"
        return f"InMemoryEventTransport({which})"


def _warn_no_subscriber(event_name: str, service_name: str) -> None:
    # The service's own logger (MicroService.get_logger's default name), once per event.
    logging.getLogger(f"gemstone_aio.service.{service_name}").warning(
        "event %r has no subscriber in this process: in-memory events reach only services "
        "of the same process. To reach other processes, configure a broker: "
        "event_transports = [RabbitMqEventTransport('amqp://user:password@host:5672/')] "
        "(see docs/events.md)",
        event_name,
    )


def wake_all(wakers: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]) -> None:
    """Set each ``(loop, event)``: at once on the running loop, thread-safely on others."""
    try:
        current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    for loop, event in wakers:
        if loop is current:
            event.set()
        else:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(event.set)
