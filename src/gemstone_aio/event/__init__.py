"""Events: publish/subscribe between services, in memory or over RabbitMQ."""

from __future__ import annotations

from .runtime import PublishResult
from .transport import (
    BaseEventTransport,
    DeadLetter,
    Delivery,
    InMemoryEventBus,
    InMemoryEventTransport,
    OutgoingEvent,
    RabbitMqEventTransport,
    Subscription,
    default_bus,
)

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
