"""The subscriber: handles every ``said_hello`` event.

Start RabbitMQ, then ``python examples/example_events/service.py`` (port 8000) and
``python examples/example_events/service2.py`` (port 8001), and call the publisher::

    curl -X POST -H "Content-Type: application/json" \
        -d '{"jsonrpc": "2.0", "method": "say_hello", "params": ["Ann"], "id": 1}' \
        http://127.0.0.1:8001/api
"""

from __future__ import annotations

import os

import pydantic

import gemstone_aio as gemstone
from gemstone_aio.event import RabbitMqEventTransport

# The broker: GEMSTONE_AMQP_URL, or a RabbitMQ on this machine with its default user.
AMQP_URL = os.environ.get("GEMSTONE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


class Greeting(pydantic.BaseModel):
    """The body of a ``said_hello`` event (validated before the handler runs)."""

    name: str


class EventTestService(gemstone.MicroService):
    name = "event_test"
    port = 8000
    event_transports = [RabbitMqEventTransport(AMQP_URL)]

    def __init__(self) -> None:
        super().__init__()
        self.greeted: list[str] = []

    @gemstone.event_handler("said_hello")
    def said_hello(self, body: Greeting) -> None:
        # A plain def handler runs in the thread pool; every instance gets broadcasts.
        self.greeted.append(body.name)
        self.logger.info("somebody said hello to %s", body.name)


if __name__ == "__main__":
    EventTestService().start()
