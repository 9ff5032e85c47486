"""Heartbeat punctuality: ping gaps at a registry, idle versus under load.

Run: ``PYTHONPATH=src python bench/discovery_heartbeat.py``. One process runs a
registry that timestamps pings and a service pinging every 0.1 s. The script measures the
gaps for a few seconds with the service idle (the baseline). Then it measures them again
while blocking calls saturate the service's 2-thread pool and 200 async calls are in
flight. It prints the mean, p99 and max gap of each run and the ratio of loaded to idle.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time

import gemstone_aio as gemstone
from gemstone_aio import RemoteService
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.testing import serving

INTERVAL = 0.1
WINDOW = 3.0


class TimedRegistry(ServiceRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.pings: list[float] = []

    @gemstone.exposed_method(private=True)
    async def ping(self, name: str, url: str) -> bool:
        self.pings.append(time.monotonic())
        return await super().ping(name, url)


class Busy(gemstone.MicroService):
    name = "bench-busy"
    max_parallel_blocking_tasks = 2
    service_registry_ping_interval = INTERVAL

    @gemstone.exposed_method()
    def block(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @gemstone.exposed_method()
    async def nap(self, seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds


def gaps(stamps: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(stamps)]


def describe(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{label:>6}: {len(values)} gaps, mean {statistics.mean(values) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"
    )


async def window(registry: TimedRegistry) -> list[float]:
    start = time.monotonic()
    await asyncio.sleep(WINDOW)
    return [t for t in registry.pings if t >= start]


async def main() -> None:
    registry = TimedRegistry()
    async with serving(registry):
        service = Busy()
        service.service_registry_urls = [str(registry.accessible_at)]
        async with serving(service), RemoteService(str(service.accessible_at)) as client:
            await asyncio.sleep(0.5)
            idle = gaps(await window(registry))
            load = [asyncio.create_task(client.call("block", 1.0)) for _ in range(8)]
            load += [asyncio.create_task(client.call("nap", WINDOW)) for _ in range(200)]
            await asyncio.sleep(0.2)
            busy = gaps(await window(registry))
            await asyncio.gather(*load)
    print(f"ping interval {INTERVAL * 1000:.0f} ms, window {WINDOW} s")
    print(describe("idle", idle))
    print(describe("loaded", busy))
    print(
        f"loaded/idle: mean {statistics.mean(busy) / statistics.mean(idle):.2f}x, "
        f"max {max(busy) / max(idle):.2f}x"
    )


if __name__ == "__main__":
    asyncio.run(main())
