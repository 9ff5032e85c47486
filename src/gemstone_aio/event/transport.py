"""Event transports (the module path gemstone 0.10 documented: ``gemstone.event.transport``).

- :class:`BaseEventTransport`: subclass it for another broker.
- :class:`InMemoryEventTransport`: events between services of one process; the default
  when a service lists no ``event_transports``.
- :class:`RabbitMqEventTransport`: events over RabbitMQ with delivery guarantees.
"""

from __future__ import annotations

from .base import BaseEventTransport, Delivery, OutgoingEvent, Subscription
from .memory import DeadLetter, InMemoryEventBus, InMemoryEventTransport, default_bus
from .rabbitmq import RabbitMqEventTransport

__all__ = [
    "BaseEventTransport",
    "DeadLetter",
    "Delivery",
    "InMemoryEventBus",
    "InMemoryEventTransport",
    "OutgoingEvent",
    "RabbitMqEventTransport",
    "Subscription",
    "default_bus",
]
