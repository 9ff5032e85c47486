"""The RabbitMQ topology of gemstone-aio events, as ``gemstone emit``/``listen`` use it.

It uses the event transport's own names (docs/events.md), so the CLI talks to the same
exchanges and queues as services, for an event ``E``:

- ``gemstone.broadcast.E``: durable fanout exchange; every listener binds its own
  server-named, exclusive, auto-delete queue.
- ``gemstone.tasks.E``: durable direct exchange, routing key ``tasks``, routing to the
  durable queue ``gemstone.tasks.E`` that subscribers compete on.
- Headers: ``x-gemstone-event`` (name), ``x-gemstone-service`` (emitter),
  ``x-gemstone-broadcast``; the body is UTF-8 JSON.
"""

from __future__ import annotations

from typing import Any, Final

# One source of truth: the names the event transport itself uses.
from ..event._base import HEADER_BROADCAST, HEADER_EVENT, HEADER_SERVICE
from ..event._rabbitmq import BROADCAST_PREFIX, TASKS_PREFIX, TASKS_ROUTING_KEY

__all__ = [
    "BROADCAST_PREFIX",
    "DEFAULT_URL",
    "HEADER_BROADCAST",
    "HEADER_EVENT",
    "HEADER_SERVICE",
    "TASKS_PREFIX",
    "TASKS_ROUTING_KEY",
    "declare_route",
]

DEFAULT_URL: Final = "amqp://guest:guest@127.0.0.1:5672/"
"""The broker ``emit`` and ``listen`` use without ``--url`` (RabbitMQ's default user)."""


async def declare_route(channel: Any, event: str, broadcast: bool) -> tuple[Any, Any | None]:
    """Declare the exchange of ``event`` (and its task queue); ``(exchange, queue | None)``."""
    import aio_pika

    if broadcast:
        exchange = await channel.declare_exchange(
            BROADCAST_PREFIX + event, aio_pika.ExchangeType.FANOUT, durable=True
        )
        return exchange, None
    exchange = await channel.declare_exchange(
        TASKS_PREFIX + event, aio_pika.ExchangeType.DIRECT, durable=True
    )
    queue = await channel.declare_queue(TASKS_PREFIX + event, durable=True)
    await queue.bind(exchange, routing_key=TASKS_ROUTING_KEY)
    return exchange, queue
