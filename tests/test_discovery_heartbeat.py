"""The heartbeat: start-up never waits for a registry, pings stay on time, unregister first."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

import gemstone_aio as gemstone
from gemstone_aio import RemoteService
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.testing import serving
from tests.fixtures.discovery import RegistryFactory, unique, wait_until


class Worker(gemstone.MicroService):
    """A service with blocking and async work, and a call that waits to be released."""

    name = "heartbeat-worker"
    max_parallel_blocking_tasks = 2
    service_registry_ping_interval = 0.2

    def __init__(self) -> None:
        super().__init__()
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.blocking = 0
        self._lock = threading.Lock()

    @gemstone.exposed_method()
    def block(self, seconds: float) -> float:
        with self._lock:
            self.blocking += 1
        time.sleep(seconds)
        return seconds

    @gemstone.exposed_method()
    async def nap(self, seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    @gemstone.exposed_method()
    async def hold(self) -> str:
        self.held.set()
        await self.release.wait()
        return "released"


class PingLog(ServiceRegistry):
    """A registry that records when each ping arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.pings: list[float] = []

    @gemstone.exposed_method(private=True)
    async def ping(self, name: str, url: str) -> bool:
        self.pings.append(time.monotonic())
        return await super().ping(name, url)


def free_url() -> str:
    """The URL of a port nothing listens on."""
    return f"http://127.0.0.1:{unused_port()}/api"


async def located(registry: ServiceRegistry, name: str) -> list[str]:
    async with RemoteService(str(registry.accessible_at)) as client:
        urls: list[str] = await client.call("locate_service", name)
        return urls


async def test_start_up_does_not_wait_for_a_down_registry() -> None:
    """With every registry down the service starts and answers; pings keep being retried."""
    worker = Worker()
    worker.service_registry_urls = [free_url(), free_url()]
    started = time.monotonic()
    async with serving(worker), RemoteService(str(worker.accessible_at)) as client:
        assert await client.call("nap", 0) == 0
        assert time.monotonic() - started < 5
        assert worker.discovery.heartbeat.running
        assert worker.discovery.heartbeat.announced == {}


async def test_a_registry_that_comes_up_later_is_registered_with() -> None:
    """The heartbeat retries a registry that was down at start until it answers."""
    port = unused_port()
    worker = Worker()
    worker.name = unique()  # type: ignore[misc]
    worker.service_registry_urls = [f"http://127.0.0.1:{port}/api"]
    async with serving(worker):
        assert worker.discovery.heartbeat.announced == {}
        registry = ServiceRegistry()
        registry.port = port
        registry.refresh_accessible_at()
        ready = asyncio.Event()
        task = asyncio.create_task(
            registry.serve(handle_signals=False, ready=ready, configure=False)
        )
        try:
            await asyncio.wait_for(ready.wait(), 10)

            async def registered() -> bool:
                return await located(registry, str(worker.name)) == [str(worker.accessible_at)]

            await wait_until(registered, what="registration")
        finally:
            registry.stop()
            await asyncio.wait_for(task, 10)


async def test_each_registry_is_pinged_independently(start_registry: RegistryFactory) -> None:
    """A registry that hangs does not delay pings to another one."""
    stalled, unstall = asyncio.Event(), asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        stalled.set()
        await unstall.wait()
        return web.Response(status=503)

    hanging_app = web.Application()
    hanging_app.router.add_post("/api", hang)
    runner = web.AppRunner(hanging_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        registry = PingLog()
        async with serving(registry):
            worker = Worker()
            worker.name = unique()  # type: ignore[misc]
            worker.service_registry_urls = [
                f"http://127.0.0.1:{port}/api",
                str(registry.accessible_at),
            ]
            async with serving(worker):

                async def five_pings() -> bool:
                    return len(registry.pings) >= 5

                await wait_until(five_pings, what="five pings")
                assert stalled.is_set()
    finally:
        unstall.set()
        await runner.cleanup()


async def test_pings_stay_on_time_under_load(start_registry: RegistryFactory) -> None:
    """Blocking calls saturating the pool and busy async calls do not delay the pings.

    The pool has 2 threads; 6 blocking calls of 1.5 s keep it busy (and queued) for
    4.5 s while 50 async calls nap. Pings every 0.2 s must keep arriving: a heartbeat
    that blocked the loop or used the pool would leave gaps of 1.5 s or more.
    """
    registry = PingLog()
    async with serving(registry):
        worker = Worker()
        worker.name = unique()  # type: ignore[misc]
        worker.service_registry_urls = [str(registry.accessible_at)]
        async with serving(worker), RemoteService(str(worker.accessible_at)) as client:
            await wait_until(lambda: _at_least(registry, 1), what="the first ping")
            load = [asyncio.create_task(client.call("block", 1.5)) for _ in range(6)]
            load += [asyncio.create_task(client.call("nap", 2.5)) for _ in range(50)]
            await wait_until(lambda: _pool_busy(worker), what="the pool to fill")
            assert worker.blocking == 2  # the other four wait for a thread
            start = time.monotonic()

            async def eight_pings_under_load() -> bool:
                return sum(t >= start for t in registry.pings) >= 8

            await wait_until(eight_pings_under_load, what="eight pings under load")
            window = [t for t in registry.pings if t >= start]
            assert not all(task.done() for task in load[:6])  # the pool was busy throughout
            await asyncio.gather(*load)
    gaps = [b - a for a, b in itertools.pairwise(window)]
    assert max(gaps) < 1.0, f"a ping was late: gaps {[round(g, 3) for g in gaps]}"
    assert window[0] - start < 1.0


async def _at_least(registry: PingLog, count: int) -> bool:
    return len(registry.pings) >= count


async def _pool_busy(worker: Worker) -> bool:
    return worker.blocking >= 2


async def test_graceful_stop_unregisters_before_draining(start_registry: RegistryFactory) -> None:
    """On stop the instance leaves the registry while a call is still in flight."""
    registry = await start_registry(expire_after=60)
    worker = Worker()
    worker.name = unique()  # type: ignore[misc]
    worker.service_registry_urls = [str(registry.accessible_at)]
    async with serving(worker):
        url = str(worker.accessible_at)

        async def registered() -> bool:
            return await located(registry, str(worker.name)) == [url]

        await wait_until(registered, what="registration")
        async with RemoteService(url) as client:
            call = asyncio.create_task(client.call("hold"))
            await asyncio.wait_for(worker.held.wait(), 10)
            worker.stop()

            async def unregistered() -> bool:
                return await located(registry, str(worker.name)) == []

            await wait_until(unregistered, what="unregistration")
            assert not call.done()  # still draining
            worker.release.set()
            assert await call == "released"


@pytest.mark.parametrize("attr", ["service_registry_ping_interval", "service_locate_cache_ttl"])
@pytest.mark.parametrize("value", [0, -1, "soon", True])
async def test_bad_intervals_are_configuration_errors(attr: str, value: object) -> None:
    """A non-positive or non-numeric interval or cache time is refused, naming it."""
    worker = Worker()
    setattr(worker, attr, value)
    with pytest.raises(gemstone.ServiceConfigurationError, match=f"{attr} .*got {value!r}"):
        worker.discovery  # noqa: B018


async def test_a_bad_strategy_is_refused_before_any_is_used() -> None:
    """Something that is not a strategy is named; serving fails at start-up."""
    worker = Worker()
    worker.discovery_strategies = ["redis://127.0.0.1"]  # type: ignore[list-item]
    with pytest.raises(gemstone.ServiceConfigurationError, match=re.escape("'redis://127.0.0.1'")):
        async with serving(worker):
            pass


async def test_registry_urls_may_be_a_comma_list() -> None:
    """``service_registry_urls`` given as one comma-separated string (from a configurator)."""
    worker = Worker()
    worker.service_registry_urls = "http://127.0.0.1:1/api, http://127.0.0.1:2/api,"
    assert [repr(s) for s in worker.discovery.strategies] == [
        "HttpRegistryStrategy('http://127.0.0.1:1/api')",
        "HttpRegistryStrategy('http://127.0.0.1:2/api')",
    ]
    await worker.discovery.aclose()
