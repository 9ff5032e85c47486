"""The publisher: ``say_hello`` answers and tells every subscriber about it.

See ``service.py`` for how to run the pair. ``request_resize`` hands one job to exactly
one of the competing workers of ``worker.py``.
"""

from __future__ import annotations

import os

import gemstone_aio as gemstone
from gemstone_aio.event import RabbitMqEventTransport

# The broker: GEMSTONE_AMQP_URL, or a RabbitMQ on this machine with its default user.
AMQP_URL = os.environ.get("GEMSTONE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


class EventTestService2(gemstone.MicroService):
    name = "event_test2"
    port = 8001
    event_transports = [RabbitMqEventTransport(AMQP_URL)]

    @gemstone.exposed_method()
    def say_hello(self, name: str) -> str:
        # Written the gemstone 0.10 way: no await; the event is published anyway.
        self.emit_event("said_hello", {"name": name})
        return f"hello {name}"

    @gemstone.exposed_method()
    async def request_resize(self, image: str, width: int) -> str:
        # One-of-N: exactly one worker handles it; wait until RabbitMQ confirmed it.
        await self.emit_event("resize_image", {"image": image, "width": width}, broadcast=False)
        return "queued"


if __name__ == "__main__":
    EventTestService2().start()
