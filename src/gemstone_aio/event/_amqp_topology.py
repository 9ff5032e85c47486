"""The RabbitMQ topology of gemstone-aio events: names, queue arguments, declarations.

One source of truth for the transport and the ``gemstone`` command line (``emit``,
``listen``, ``dead-letters``); ``docs/events.md`` documents it for other programs. For an
event ``E``:

- ``gemstone.broadcast.E``: fanout exchange, durable.
- ``gemstone.broadcast.E.<service>.<id>``: each subscribing instance's own queue,
  durable, bound to that exchange, with ``x-expires`` so that the queue of an instance
  that died goes away; the instance deletes it when it stops. It outlives connection
  losses and broker restarts while the instance lives.
- ``gemstone.tasks.E``: direct exchange, durable; routing key ``tasks`` leads to the
  quorum queue ``gemstone.tasks.E`` (``x-queue-type: quorum``), where the broker counts
  deliveries (``x-delivery-count``). A classic queue of that name made by an older
  version keeps working without that count (see "Migrating" in ``docs/events.md``).
- ``gemstone.dead-letter``: direct exchange, durable; routing key ``E`` leads to the
  durable queue ``gemstone.dead-letter.E``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aio_pika.exceptions import ChannelPreconditionFailed

__all__ = [
    "BROADCAST_PREFIX",
    "DEAD_LETTER_EXCHANGE",
    "DEAD_LETTER_PREFIX",
    "HEADER_DELIVERY_COUNT",
    "HEADER_REPLAYED",
    "MAX_NAME_BYTES",
    "TASKS_PREFIX",
    "TASKS_QUEUE_ARGUMENTS",
    "TASKS_ROUTING_KEY",
    "check_event_name",
    "declare_broadcast_exchange",
    "declare_dead_letter_route",
    "declare_tasks_route",
    "delivery_count",
    "instance_queue_name",
    "tasks_queue_is_quorum",
    "warn_classic_tasks_queue",
]

BROADCAST_PREFIX: Final = "gemstone.broadcast."
"""Prefix of the fanout exchange of each broadcast event (and of instances' queues)."""
TASKS_PREFIX: Final = "gemstone.tasks."
"""Prefix of the direct exchange and of the shared queue of each one-of-N event."""
TASKS_ROUTING_KEY: Final = "tasks"
"""Routing key of one-of-N events."""
DEAD_LETTER_EXCHANGE: Final = "gemstone.dead-letter"
"""The direct exchange of dead letters; the routing key is the event name."""
DEAD_LETTER_PREFIX: Final = "gemstone.dead-letter."
"""Prefix of the durable dead-letter queue of each event."""
TASKS_QUEUE_ARGUMENTS: Final[Mapping[str, Any]] = {"x-queue-type": "quorum"}
"""The arguments of every ``gemstone.tasks.E`` queue: every declarer must give the same."""
HEADER_DELIVERY_COUNT: Final = "x-delivery-count"
"""Set by a quorum queue: how many times the message was delivered before and came back
unsettled (nack, consumer's channel or connection closed, consumer process killed)."""
HEADER_REPLAYED: Final = "x-gemstone-replayed"
"""Header of a message ``gemstone dead-letters replay`` published again: how many times."""
MAX_NAME_BYTES: Final = 255
"""AMQP's limit on exchange and queue names (UTF-8 bytes)."""

_log = logging.getLogger("gemstone_aio.event.rabbitmq")


def check_event_name(event: str) -> None:
    """Refuse an event name whose exchanges and queues RabbitMQ could not name.

    Raises:
        ValueError: The longest derived name (``gemstone.dead-letter.E``) is over 255 bytes.
    """
    longest = len((DEAD_LETTER_PREFIX + event).encode("utf-8"))
    if longest > MAX_NAME_BYTES:
        raise ValueError(
            f"event name {event[:40]!r}... is too long for RabbitMQ: its dead-letter queue "
            f"name would be {longest} bytes (at most {MAX_NAME_BYTES})"
        )


def instance_queue_name(event: str, service: str, instance: str) -> str:
    """The broadcast queue of one instance: ``gemstone.broadcast.E.<service>.<instance>``.

    The service part is shortened when the whole would pass AMQP's 255 bytes; the
    instance id keeps it unique.
    """
    head = f"{BROADCAST_PREFIX}{event}."
    tail = f".{instance}"
    room = MAX_NAME_BYTES - len(head.encode()) - len(tail.encode())
    part = service.encode("utf-8")[: max(room, 0)].decode("utf-8", "ignore")
    return f"{head}{part}{tail}"


def delivery_count(headers: Mapping[str, Any] | None) -> int:
    """The broker's ``x-delivery-count`` of a received message (0 when absent or odd)."""
    value = (headers or {}).get(HEADER_DELIVERY_COUNT, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


async def declare_broadcast_exchange(channel: AbstractChannel, event: str) -> AbstractExchange:
    """Declare ``gemstone.broadcast.E`` (fanout, durable)."""
    import aio_pika

    return await channel.declare_exchange(
        BROADCAST_PREFIX + event, aio_pika.ExchangeType.FANOUT, durable=True
    )


async def tasks_queue_is_quorum(probe: AbstractChannel, event: str) -> bool:
    """Declare ``gemstone.tasks.E`` as a quorum queue on the throwaway channel ``probe``.

    Returns False when the queue exists already as a classic queue (made by an older
    version or another program): RabbitMQ refuses to change a queue's arguments, and
    closes ``probe`` to say so. The caller closes ``probe`` either way.
    """
    try:
        await probe.declare_queue(
            TASKS_PREFIX + event, durable=True, arguments=dict(TASKS_QUEUE_ARGUMENTS)
        )
    except ChannelPreconditionFailed:
        return False
    return True


async def declare_tasks_route(
    channel: AbstractChannel, event: str, *, quorum: bool
) -> tuple[AbstractExchange, AbstractQueue]:
    """Declare ``gemstone.tasks.E`` (direct exchange and queue) and bind them with ``tasks``.

    ``quorum`` says how the queue exists (see :func:`tasks_queue_is_quorum`), so the
    declaration matches it and the channel can declare it again after a reconnection.
    """
    import aio_pika

    exchange = await channel.declare_exchange(
        TASKS_PREFIX + event, aio_pika.ExchangeType.DIRECT, durable=True
    )
    queue = await channel.declare_queue(
        TASKS_PREFIX + event,
        durable=True,
        arguments=dict(TASKS_QUEUE_ARGUMENTS) if quorum else None,
    )
    await queue.bind(exchange, routing_key=TASKS_ROUTING_KEY)
    return exchange, queue


async def declare_dead_letter_route(
    channel: AbstractChannel, event: str
) -> tuple[AbstractExchange, AbstractQueue]:
    """Declare ``gemstone.dead-letter`` and the durable queue ``gemstone.dead-letter.E``."""
    import aio_pika

    exchange = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    queue = await channel.declare_queue(DEAD_LETTER_PREFIX + event, durable=True)
    await queue.bind(exchange, routing_key=event)
    return exchange, queue


def warn_classic_tasks_queue(event: str, who: str) -> None:
    """The one line saying a task queue predates broker-side delivery counting."""
    _log.warning(
        "%s: queue %s%s is a classic queue (made before gemstone-aio used quorum queues): "
        "it works, but the broker does not count deliveries, so a message whose handler "
        "kills the process is redelivered forever. Migrate it: see 'Migrating task "
        "queues' in docs/events.md",
        who,
        TASKS_PREFIX,
        event,
    )
