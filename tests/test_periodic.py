"""Periodic tasks: sync and async, partials, no overlap, errors, cancellation."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

import gemstone_aio as gemstone
from gemstone_aio.server import PERIODIC_KEY
from gemstone_aio.server._periodic import PeriodicTasks
from tests.fixtures.config import wait_until


class Ticker(gemstone.MicroService):
    name = "ticker"

    def __init__(self) -> None:
        super().__init__()
        self.sync_threads: list[str] = []
        self.async_runs = 0
        self.partial_values: list[int] = []

    def tick_sync(self) -> None:
        self.sync_threads.append(threading.current_thread().name)

    async def tick_async(self) -> None:
        self.async_runs += 1

    periodic_tasks = [(tick_sync, 0.02), (tick_async, 0.02)]


async def test_sync_tasks_run_in_the_pool_and_async_on_the_loop(
    aiohttp_client: AiohttpClient,
) -> None:
    """A plain function runs in the service's pool; an async one on the loop."""
    service = Ticker()
    await aiohttp_client(service.make_app())
    await wait_until(lambda: len(service.sync_threads) >= 2 and service.async_runs >= 2)
    assert all(name.startswith("gemstone-ticker") for name in service.sync_threads)


async def test_functools_partial_of_either_kind(aiohttp_client: AiohttpClient) -> None:
    """functools.partial works around sync and async callables."""
    seen_sync: list[int] = []
    seen_async: list[int] = []

    def record(target: list[int], value: int) -> None:
        target.append(value)

    async def record_async(target: list[int], value: int) -> None:
        target.append(value)

    class Partials(gemstone.MicroService):
        name = "partials"
        periodic_tasks = [
            (functools.partial(record, seen_sync, 1), 0.02),
            (functools.partial(record_async, seen_async, 2), 0.02),
        ]

    service = Partials()
    app = service.make_app()
    tasks = app[PERIODIC_KEY].tasks
    assert [task.is_async for task in tasks] == [False, True]
    await aiohttp_client(app)
    await wait_until(lambda: len(seen_sync) >= 2 and len(seen_async) >= 2)
    assert set(seen_sync) == {1}
    assert set(seen_async) == {2}


async def test_runs_never_overlap(aiohttp_client: AiohttpClient) -> None:
    """A run longer than the interval delays the next one; ticks are skipped, not stacked."""
    active = 0
    most_active = 0

    async def slow() -> None:
        nonlocal active, most_active
        active += 1
        most_active = max(most_active, active)
        await asyncio.sleep(0.05)
        active -= 1

    def slow_blocking() -> None:
        time.sleep(0.05)

    class Overrunning(gemstone.MicroService):
        name = "overrunning"
        periodic_tasks = [(slow, 0.01), (slow_blocking, 0.01)]

    service = Overrunning()
    app = service.make_app()
    await aiohttp_client(app)
    tasks = app[PERIODIC_KEY].tasks
    await wait_until(lambda: all(task.runs >= 3 for task in tasks))
    assert most_active == 1
    assert all(task.skipped > 0 for task in tasks)


async def test_an_exception_is_logged_and_the_task_goes_on(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing run is logged with the traceback; later runs still happen."""
    calls = 0

    def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first run fails")

    class Flaky(gemstone.MicroService):
        name = "flaky"
        periodic_tasks = [(flaky, 0.02)]

    service = Flaky()
    app = service.make_app()
    with caplog.at_level(logging.ERROR, logger="gemstone_aio.service.flaky"):
        await aiohttp_client(app)
        await wait_until(lambda: calls >= 3)
    task = app[PERIODIC_KEY].tasks[0]
    assert task.failures == 1
    failure = [r for r in caplog.records if "periodic task" in r.getMessage()]
    assert len(failure) == 1
    assert "flaky" in failure[0].getMessage()
    assert failure[0].exc_info is not None
    assert "first run fails" in str(failure[0].exc_info[1])


async def test_tasks_are_cancelled_on_shutdown(aiohttp_client: AiohttpClient) -> None:
    """Closing the app cancels an async run in progress and ends every task."""
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def long_run() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    class Long(gemstone.MicroService):
        name = "long_runner"
        periodic_tasks = [(long_run, 0.01)]

    service = Long()
    app = service.make_app()
    client = await aiohttp_client(app)
    await asyncio.wait_for(started.wait(), 5)
    await client.close()
    assert cancelled.is_set()
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert not any(name.startswith("periodic:") for name in names)


async def test_a_bound_method_added_in_init(aiohttp_client: AiohttpClient) -> None:
    """Bound methods added per instance work too."""

    class PerInstance(gemstone.MicroService):
        name = "per_instance"

        def __init__(self) -> None:
            super().__init__()
            self.count = 0
            self.periodic_tasks = [(self.bump, 0.02)]

        async def bump(self) -> None:
            self.count += 1

    first, second = PerInstance(), PerInstance()
    await aiohttp_client(first.make_app())
    await wait_until(lambda: first.count >= 2)
    assert second.count == 0
    assert PerInstance.periodic_tasks == ()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param((print, 0), "positive number of seconds, got 0", id="zero"),
        pytest.param((print, -1.5), "positive number of seconds, got -1.5", id="negative"),
        pytest.param((print, "5"), "positive number of seconds, got '5'", id="string"),
        pytest.param((print, float("inf")), "positive number of seconds, got inf", id="inf"),
        pytest.param(("print", 1), "'print' is not callable", id="not-callable"),
        pytest.param((print,), "is \\(callable, seconds\\)", id="wrong-shape"),
    ],
)
def test_bad_entries_are_refused_when_building_the_app(entry: Any, message: str) -> None:
    """A malformed entry stops start-up with a message naming it."""

    class Bad(gemstone.MicroService):
        name = "bad_periodic"
        periodic_tasks = [entry]

    with pytest.raises(gemstone.ServiceConfigurationError, match=message):
        Bad().make_app()


def test_functions_of_the_class_body_are_bound_to_the_instance() -> None:
    """``periodic_tasks = [(tick, 5)]`` after ``def tick(self)`` binds tick to the service."""
    service = Ticker()
    tasks = PeriodicTasks.from_service(service).tasks
    assert [task.name for task in tasks] == ["Ticker.tick_sync", "Ticker.tick_async"]
    assert all(getattr(task.func, "__self__", None) is service for task in tasks)
