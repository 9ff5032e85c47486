"""Consuming on RabbitMQ: deliveries, and the consumer of a shared one-of-N queue.

The shared queue ``gemstone.tasks.E`` is a quorum queue: the broker counts how many
times each message was delivered and came back unsettled (``x-delivery-count``), which
includes the times the process handling it died. The dispatcher dead-letters a message
whose count reached ``max_attempts`` before running any handler, so a message that kills
its consumer stops coming back.

When a consumer dies, every message it held comes back counted, not only the one that
killed it. So that a poison message does not take its neighbours' attempts with it, a
message that came back (count > 0, a *suspect*) is handled alone: the
:class:`SharedQueueConsumer` switches to a consumer with prefetch 1 (cautious mode),
handles the suspects it already holds one at a time with nothing else running, and
switches back to its usual prefetch (normal mode) on the first message that never came
back. A consumer also starts cautious, since a restart after a crash finds the returned
messages at the head of the queue. Classic queues (made by older versions) carry no
count: their consumer stays in normal mode.
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
        self._wanted = "normal"
        self._tag: str | None = None
        self._held = 0  # messages received and not yet settled
        self._running = 0  # non-suspects being handled
        self._alone = False  # a suspect is being handled
        self._solo = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._switcher: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        """Start consuming (cautious for a quorum queue, normal for a classic one)."""
        await self._consume(self._wanted)

    async def stop(self, timeout: float) -> None:
        """Take no new messages (the ones held are handled or requeued by the caller).

        ``timeout`` bounds the round trips to the broker (it may be down). A mode switch
        under way finishes its step first: aiormq closes a channel whose call is
        cancelled, and the messages held on it could not be acknowledged any more.
        """
        self._stopping = True
        async with self._changed:
            self._changed.notify_all()
        switcher = self._switcher
        if switcher is not None and not switcher.done():
            await asyncio.wait({switcher}, timeout=timeout)
            if not switcher.done():
                switcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await switcher
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
        suspect = self.counted and delivery_count(message.headers) > 0
        if False:
            if suspect:
                wanted = "cautious"  # it came back: handle it alone
            elif self.mode == "cautious":
                wanted = "normal"  # past the messages that came back
            else:
                wanted = self._wanted
            if wanted != self._wanted:
                self._wanted = wanted
                self._switch()
        self._held += 1
        try:
            if False:
                await self._run_alone(message)
            else:
                await self._run_beside(message)
        finally:
            self._held -= 1
            async with self._changed:
                self._changed.notify_all()

    async def _run_alone(self, message: AbstractIncomingMessage) -> None:
        async with self._solo:
            async with self._changed:
                await self._changed.wait_for(lambda: self._running == 0)
                self._alone = True
            try:
                await self._handle(message)
            finally:
                async with self._changed:
                    self._alone = False
                    self._changed.notify_all()

    async def _run_beside(self, message: AbstractIncomingMessage) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._alone)
            self._running += 1
        try:
            await self._handle(message)
        finally:
            async with self._changed:
                self._running -= 1
                self._changed.notify_all()

    # -- switching modes ---------------------------------------------------------------

    def _switch(self) -> None:
        if self._switcher is None or self._switcher.done():
            self._switcher = asyncio.get_running_loop().create_task(self._follow())

    def _stopped(self) -> bool:
        return self._stopping

    async def _follow(self) -> None:
        # Bring the consumer to the wanted mode, again if it changed meanwhile.
        while not self._stopped() and self.mode != self._wanted:
            wanted = self._wanted
            try:
                await self._cancel()
                if wanted == "cautious":
                    # Nothing held may run beside the suspects: wait until all are settled.
                    async with self._changed:
                        await self._changed.wait_for(lambda: self._held == 0 or self._stopping)
                if self._stopped():
                    return
                await self._consume(wanted)
            except CONNECTION_EXCEPTIONS as exc:
                _log.debug("switching the consumer of %s failed (%s); retrying", self.queue, exc)
                await self.channel.ready()
