"""Load and soak over real HTTP on loopback: zero errors, and nothing grows.

The load test sustains a fixed number of calls from concurrent clients and records the
p99 latency (``record_property``: visible in a JUnit report). The soak makes 100,000
calls and checks that resident memory, open file descriptors and asyncio tasks do not
grow once the service is warm.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from gemstone_aio.testing import serving
from tests.fixtures.services import Calculator

BODY = b'{"jsonrpc": "2.0", "method": "say_hello", "params": {"name": "load"}, "id": 1}'
ASYNC_BODY = b'{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 2}'
HEADERS = {"Content-Type": "application/json"}


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def hammer(
    url: str, total: int, concurrency: int, check: Callable[[Any], bool]
) -> tuple[list[float], list[str]]:
    """Send ``total`` calls from ``concurrency`` workers; return latencies and errors."""
    latencies: list[float] = []
    errors: list[str] = []
    remaining = total
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(index: int) -> None:
            nonlocal remaining
            body = BODY if index % 2 else ASYNC_BODY
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=HEADERS) as response:
                        answer = await response.json()
                        if response.status != 200 or not check(answer):
                            errors.append(f"{response.status}: {answer}")
                except aiohttp.ClientError as exc:
                    errors.append(repr(exc))
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return latencies, errors


def correct(answer: Any) -> bool:
    return answer in (
        {"jsonrpc": "2.0", "result": "hello load", "id": 1},
        {"jsonrpc": "2.0", "result": 19, "id": 2},
    )


@pytest.mark.timeout(300)
async def test_load_zero_errors(record_property: Callable[[str, object], None]) -> None:
    """5,000 calls from 50 concurrent clients (half blocking, half async): zero errors."""
    async with serving(Calculator()) as service:
        assert service.accessible_at is not None
        latencies, errors = await hammer(service.accessible_at, 5_000, 50, correct)
    assert errors == []
    assert len(latencies) == 5_000
    p99 = statistics.quantiles(latencies, n=100)[98]
    record_property("p99_ms", round(p99 * 1000, 2))
    record_property("p50_ms", round(statistics.median(latencies) * 1000, 2))


@pytest.mark.timeout(900)
async def test_soak_no_growth() -> None:
    """100,000 calls: after warm-up, memory, file descriptors and tasks do not grow."""
    async with serving(Calculator()) as service:
        url = service.accessible_at
        assert url is not None
        _, errors = await hammer(url, 10_000, 20, correct)  # warm-up: caches, pools, allocator
        assert errors == []
        gc.collect()
        rss_before, fds_before = rss_bytes(), open_fds()
        tasks_before = len(asyncio.all_tasks())
        _, errors = await hammer(url, 90_000, 20, correct)
        assert errors == []
        gc.collect()
        growth = rss_bytes() - rss_before
        assert growth < 5 * 1024 * 1024, f"resident memory grew by {growth / 1e6:.1f} MB"
        assert open_fds() <= fds_before + 2
        assert len(asyncio.all_tasks()) == tasks_before
