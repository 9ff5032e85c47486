"""A periodic task: count ticks every half second and expose the count.

Run it with ``python examples/periodic_task.py`` and call ``ticks``.
"""

from __future__ import annotations

import asyncio
import logging
import time

import gemstone_aio as gemstone

log = logging.getLogger(__name__)


class TickingService(gemstone.MicroService):
    name = "ticking_service"
    interval = 0.5

    def __init__(self) -> None:
        super().__init__()
        self.ticks = 0
        self.last_report = 0.0
        # Bound methods are added per instance; functions of the class body work too.
        self.periodic_tasks = [
            *self.periodic_tasks,
            (self.tick, self.interval),
            (self.report, self.interval * 4),
        ]

    async def tick(self) -> None:
        """Runs on the event loop."""
        self.ticks += 1
        await asyncio.sleep(0)

    def report(self) -> None:
        """A plain function: it runs in the service's thread pool, so blocking is fine."""
        self.last_report = time.time()
        log.info("%d ticks so far", self.ticks)

    @gemstone.exposed_method()
    def ticks_so_far(self) -> int:
        return self.ticks


if __name__ == "__main__":
    TickingService().start()
