"""Where the tutorial's services find the registry and the broker.

``REGISTRY_URL`` (default ``http://127.0.0.1:5000/api``) and ``GEMSTONE_AMQP_URL``: with a
broker URL the services exchange events over RabbitMQ; without one they use the embedded
in-memory transport, which only reaches services in the same process.
"""

from __future__ import annotations

import os

from gemstone_aio.event import BaseEventTransport, RabbitMqEventTransport

REGISTRY_URL = os.environ.get("REGISTRY_URL", "http://127.0.0.1:5000/api")


def event_transports() -> list[BaseEventTransport]:
    """RabbitMQ when ``GEMSTONE_AMQP_URL`` is set, else the in-memory default (an empty list)."""
    url = os.environ.get("GEMSTONE_AMQP_URL")
    return [RabbitMqEventTransport(url)] if url else []
