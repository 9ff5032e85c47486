"""The RabbitMQ topology of gemstone-aio events, as ``gemstone emit``/``listen`` use it.

It uses the event transport's own names and declarations (docs/events.md), so the CLI
talks to the same exchanges and queues as services, for an event ``E``:

- ``gemstone.broadcast.E``: durable fanout exchange; every listener binds its own
  server-named, exclusive, auto-delete queue.
- ``gemstone.tasks.E``: durable direct exchange, routing key ``tasks``, routing to the
  quorum queue ``gemstone.tasks.E`` that subscribers compete on (a classic queue made by
  an older version is used as it is).
- ``gemstone.dead-letter``: durable direct exchange, routing key ``E``, to the durable
  queue ``gemstone.dead-letter.E``.
- Headers: ``x-gemstone-event`` (name), ``x-gemstone-service`` (emitter),
  ``x-gemstone-broadcast``; the body is UTF-8 JSON.
"""

from __future__ import annotations

import contextlib
from typing import Any, Final

# One source of truth: the names and declarations the event transport itself uses.
from ..event._amqp_topology import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_PREFIX,
    declare_broadcast_exchange,
    declare_dead_letter_route,
    declare_tasks_route,
    tasks_queue_is_quorum,
)
from ..event._base import HEADER_BROADCAST, HEADER_EVENT, HEADER_SERVICE
from ..event._rabbitmq import BROADCAST_PREFIX, TASKS_PREFIX, TASKS_ROUTING_KEY

__all__ = [
    "BROADCAST_PREFIX",
    "DEAD_LETTER_EXCHANGE",
    "DEAD_LETTER_PREFIX",
    "DEFAULT_URL",
    "HEADER_BROADCAST",
    "HEADER_EVENT",
    "HEADER_SERVICE",
    "TASKS_PREFIX",
    "TASKS_ROUTING_KEY",
    "declare_dead_letters",
    "declare_route",
    "declare_tasks_exchange",
]

DEFAULT_URL: Final = "amqp://guest:guest@127.0.0.1:5672/"
"""The broker ``emit`` and ``listen`` use without ``--url`` (RabbitMQ's default user)."""


async def declare_route(
    channel: Any, event: str, broadcast: bool, *, connection: Any = None
) -> tuple[Any, Any | None]:
    """Declare the exchange of ``event`` (and its task queue); ``(exchange, queue | None)``.

    For the task queue, ``connection`` opens a throwaway channel to learn whether the
    queue is a quorum queue or an older classic one (RabbitMQ closes a channel that
    declares a queue with other arguments than it has).
    """
    if broadcast:
        return await declare_broadcast_exchange(channel, event), None
    quorum = True
    if connection is not None:
        probe = await connection.channel()
        try:
            quorum = await tasks_queue_is_quorum(probe, event)
        finally:
            with contextlib.suppress(Exception):
                await probe.close()
    return await declare_tasks_route(channel, event, quorum=quorum)


async def declare_tasks_exchange(channel: Any, event: str) -> Any:
    """Declare only the direct exchange ``gemstone.tasks.E`` (for a tap of its events)."""
    import aio_pika

    return await channel.declare_exchange(
        TASKS_PREFIX + event, aio_pika.ExchangeType.DIRECT, durable=True
    )


async def declare_dead_letters(channel: Any, event: str) -> tuple[Any, Any]:
    """Declare ``gemstone.dead-letter`` and the dead-letter queue of ``event``."""
    return await declare_dead_letter_route(channel, event)
