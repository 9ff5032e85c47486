"""Competing consumers: run it twice; each ``resize_image`` job goes to one worker.

``python examples/example_events/worker.py 8010`` and ``... worker 8011``, then call
``request_resize`` on ``service2.py``. A job whose handler keeps failing is retried with
backoff, then parked in the dead-letter queue ``gemstone.dead-letter.resize_image``.
"""

from __future__ import annotations

import os
import sys

from typing_extensions import TypedDict

import gemstone_aio as gemstone
from gemstone_aio.event import RabbitMqEventTransport

# The broker: GEMSTONE_AMQP_URL, or a RabbitMQ on this machine with its default user.
AMQP_URL = os.environ.get("GEMSTONE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


class ResizeJob(TypedDict):
    image: str
    width: int


class ResizeWorker(gemstone.MicroService):
    name = "resize_worker"
    port = 8010
    event_transports = [RabbitMqEventTransport(AMQP_URL, max_attempts=3)]

    def __init__(self) -> None:
        super().__init__()
        self.done: list[ResizeJob] = []

    @gemstone.event_handler("resize_image")
    async def resize(self, job: ResizeJob) -> None:
        if job["width"] <= 0:
            raise ValueError(f"cannot resize {job['image']} to width {job['width']}")
        self.done.append(job)
        self.logger.info("resized %s to %d px", job["image"], job["width"])


if __name__ == "__main__":
    worker = ResizeWorker()
    if len(sys.argv) > 1:
        worker.port = int(sys.argv[1])
        worker.refresh_accessible_at()
    worker.start()
