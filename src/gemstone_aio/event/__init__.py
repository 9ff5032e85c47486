"""Events: publish/subscribe between services, in memory or over RabbitMQ.

- :class:`BaseEventTransport`: subclass it for another broker.
- :class:`InMemoryEventTransport`: events between services of one process; the default
  when a service lists no ``event_transports``.
- :class:`RabbitMqEventTransport`: events over RabbitMQ with delivery guarantees.

gemstone 0.10's module path ``gemstone_aio.event.transport`` holds the same names.
"""

from __future__ import annotations

from ._base import BaseEventTransport, Delivery, OutgoingEvent, Subscription
from ._memory import DeadLetter, InMemoryEventBus, InMemoryEventTransport, default_bus
from ._publish import PublishResult
from ._rabbitmq import RabbitMqEventTransport

__all__ = [
    "BaseEventTransport",
    "DeadLetter",
    "Delivery",
    "InMemoryEventBus",
    "InMemoryEventTransport",
    "OutgoingEvent",
    "PublishResult",
    "RabbitMqEventTransport",
    "Subscription",
    "default_bus",
]
