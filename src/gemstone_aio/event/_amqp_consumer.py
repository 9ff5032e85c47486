"""Consuming on RabbitMQ: deliveries, and the consumer of a shared one-of-N queue.

The shared queue ``gemstone.tasks.E`` is a quorum queue: the broker counts how many
times each message was delivered and came back unsettled (``x-delivery-count``), which
includes the times the process handling it died. The dispatcher dead-letters a message
whose count reached ``max_attempts`` before running any handler, so a message that kills
its consumer stops coming back.

When a consumer dies, every message it held comes back counted, not only the one that
killed it. So that a poison message does not take its neighbours' attempts with it:

- A :class:`SharedQueueConsumer` starts **cautious**, with prefetch 1: after a crash the
  messages that came back are at the head of the queue, and each is then the only message
  the new process holds, so a crash counts against that one alone. At the first message
  that never came back (count 0) it switches to its usual prefetch (**normal**). The
  switch is made while that message is held and unacknowledged, so that nothing is on its
  way to the cautious consumer when it is cancelled (RabbitMQ returns, and counts, a
  message in flight to a consumer being cancelled).
- In normal mode, a message that came back (a *suspect*: count > 0, another instance
  died holding it) is handled alone: it waits for the handlers running, and the messages
  received meanwhile wait until no suspect is left. The consumer is not switched back to prefetch 1: that
  cancellation would count the messages in flight, whether or not anything crashes.

Classic queues (made by older versions) carry no count: their consumer starts normal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from ..errors import EventPublishError
from ._amqp_topology import HEADER_DELIVERY_COUNT, delivery_count
from ._base import HEADER_ATTEMPTS, HEADER_ERROR, Delivery

__all__ = ["AmqpDelivery", "SharedQueueConsumer"]

_log = logging.getLogger("gemstone_aio.event.rabbitmq")

DeadLetterPublisher = Callable[[str, AbstractIncomingMessage, dict[str, Any]], Awaitable[None]]


class AmqpDelivery(Delivery):
    """One message received from RabbitMQ, settled by the dispatcher."""

    def __init__(
        self,
        message: AbstractIncomingMessage,
        event_name: str,
        broadcast: bool,
        dead_letters: DeadLetterPublisher,
        *,
        counted: bool,
    ) -> None:
        self.event_name = event_name
        self.body = message.body
        self.headers = message.headers or {}  # read-only here: dead_letter() copies it
        self.broadcast = broadcast
        self.previous_deliveries = delivery_count(self.headers) if counted else 0
        self.settled = False
        self._message = message
        self._dead_letters = dead_letters

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
        headers = {
            **{k: v for k, v in self.headers.items() if k != HEADER_DELIVERY_COUNT},
            HEADER_ERROR: reason[:4000],
            HEADER_ATTEMPTS: attempts,
        }
        try:
            await self._dead_letters(self.event_name, self._message, headers)
        except EventPublishError as exc:
            _log.error("could not dead-letter event %r (%s); requeueing it", self.event_name, exc)
            await self.requeue()
            return
        await self.ack()

    async def requeue(self) -> None:
        self.settled = True
        with contextlib.suppress(*CONNECTION_EXCEPTIONS):
            await self._message.nack(requeue=True)


Handle = Callable[[AbstractIncomingMessage], Awaitable[None]]


class SharedQueueConsumer:
    """The consumer of one instance on the shared queue ``gemstone.tasks.E``.

    Args:
        channel: A channel of its own (its prefetch changes with the mode).
        queue: The shared queue, declared on ``channel``.
        prefetch: Unacknowledged messages in normal mode.
        counted: The queue is a quorum queue (it counts deliveries).
        handle: Runs the dispatcher on a message and settles it.
        wrap: Wraps the consumer's callback (the transport tracks deliveries in flight
            and gives back the ones left unsettled).
    """

    def __init__(
        self,
        channel: AbstractRobustChannel,
        queue: AbstractQueue,
        prefetch: int,
        *,
        counted: bool,
        handle: Handle,
        wrap: Callable[[Handle], Handle],
    ) -> None:
        self.channel = channel
        self.queue = queue
        self.prefetch = prefetch
        self.counted = counted
        self._handle = handle
        self._entry = wrap(self.on_message)
        self.mode: str | None = None  # "cautious" or "normal" once consuming
        self._tag: str | None = None
        self._running = 0  # messages that never came back, being handled
        self._suspects = 0  # messages that came back, held (waiting or being handled)
        self._solo = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._switch = asyncio.Lock()
        self._recovery: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        """Start consuming: cautious on a quorum queue, normal on a classic one."""
        await self._consume("cautious" if self.counted else "normal")

    async def stop(self, timeout: float) -> None:
        """Take no new messages (the ones held are handled or requeued by the caller).

        ``timeout`` bounds the round trips to the broker (it may be down). A switch to
        normal mode under way finishes first: aiormq closes a channel whose call is
        cancelled, and the messages held on it could not be acknowledged any more.
        """
        self._stopping = True
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._switch.acquire()
                self._switch.release()
        await self._cancel(timeout)

    async def _consume(self, mode: str) -> None:
        await self.channel.set_qos(prefetch_count=1 if mode == "cautious" else self.prefetch)
        self._tag = await self.queue.consume(self._entry)
        self.mode = mode

    async def _cancel(self, timeout: float | None = None) -> None:
        tag, self._tag = self._tag, None
        self.mode = None
        if tag is not None:
            # aio-pika forgets the consumer first (it is not restored after a
            # reconnection), then asks the broker.
            with contextlib.suppress(*CONNECTION_EXCEPTIONS):
                await asyncio.wait_for(self.queue.cancel(tag), timeout)

    # -- messages ----------------------------------------------------------------------

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        """aio-pika's callback: one task per delivery."""
        if not self.counted:  # a classic queue: no counts, nothing to handle alone
            await self._handle(message)
            return
        suspect = delivery_count(message.headers) > 0
        if not suspect and self.mode == "cautious":
            # Past the messages that came back. This one is the only message the
            # cautious consumer holds: nothing is on its way to it, cancel it now.
            await self._go_normal()
        if suspect:
            await self._run_alone(message)
        else:
            await self._run_beside(message)

    async def _run_alone(self, message: AbstractIncomingMessage) -> None:
        # Suspects go first, one at a time, once the others running have finished;
        # messages received meanwhile wait until no suspect is left.
        self._suspects += 1
        try:
            async with self._solo:
                async with self._changed:
                    await self._changed.wait_for(lambda: self._running == 0)
                await self._handle(message)
        finally:
            self._suspects -= 1
            if not self._suspects:
                async with self._changed:
                    self._changed.notify_all()

    async def _run_beside(self, message: AbstractIncomingMessage) -> None:
        # The common case takes no lock: no suspect is held, nobody waits.
        if self._suspects:
            async with self._changed:
                await self._changed.wait_for(lambda: not self._suspects)
        self._running += 1
        try:
            await self._handle(message)
        finally:
            self._running -= 1
            if not self._running and self._suspects:
                async with self._changed:
                    self._changed.notify_all()

    # -- switching to normal mode ------------------------------------------------------

    def _stopped(self) -> bool:
        return self._stopping

    async def _go_normal(self) -> None:
        async with self._switch:
            if self.mode != "cautious" or self._stopped():
                return
            try:
                await self._cancel()
                await self._consume("normal")
            except CONNECTION_EXCEPTIONS as exc:
                # The connection dropped meanwhile; the cautious consumer is forgotten
                # already (aio-pika would not restore it): consume once it is back.
                _log.debug("switching the consumer of %s failed (%s)", self.queue, exc)
                self.mode = None
                self._recovery = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        while not self._stopped():
            try:
                await self.channel.ready()
                async with self._switch:
                    if not self._stopped() and self._tag is None:
                        await self._consume("cautious" if self.counted else "normal")
                return
            except CONNECTION_EXCEPTIONS as exc:
                _log.debug("consuming %s again failed (%s); retrying", self.queue, exc)
                await asyncio.sleep(0.5)
