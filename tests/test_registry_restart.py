"""A registry restart is invisible: no failed call, no pile-up, instances back at once."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp.test_utils import unused_port

import gemstone_aio as gemstone
from gemstone_aio.discovery import HttpRegistryStrategy
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.testing import serving
from tests.fixtures.discovery import unique, wait_until


class Echo(gemstone.MicroService):
    name = "restart-echo"
    service_registry_ping_interval = 1.0

    @gemstone.exposed_method()
    async def where(self) -> str:
        return str(self.accessible_at)


class Caller(gemstone.MicroService):
    name = "restart-caller"
    service_locate_cache_ttl = 0.1


@contextlib.asynccontextmanager
async def registry_on(port: int, *, warmup: float) -> AsyncIterator[ServiceRegistry]:
    """Serve a fresh registry on ``port`` (the same port across restarts)."""
    registry = ServiceRegistry()
    registry.port = port
    registry.warmup = warmup
    registry.refresh_accessible_at()
    ready = asyncio.Event()
    task = asyncio.create_task(registry.serve(handle_signals=False, ready=ready, configure=False))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        yield registry
    finally:
        registry.stop()
        await asyncio.wait_for(task, 10)


async def test_a_registry_restart_under_load_fails_no_call() -> None:
    """Calls go on through a restart, spread over every instance, while they re-register."""
    port = unused_port()
    registry_url = f"http://127.0.0.1:{port}/api"
    name = unique("echo")
    echoes = [Echo() for _ in range(3)]
    for echo in echoes:
        echo.name = name  # type: ignore[misc]
        echo.service_registry_urls = [registry_url]
    caller = Caller()
    caller.service_registry_urls = [registry_url]
    counts: collections.Counter[str] = collections.Counter()
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            try:
                service = await caller.get_service(name)
                counts[await service.call("where")] += 1
            except Exception as exc:
                failures.append(exc)
            await asyncio.sleep(0.005)

    async with contextlib.AsyncExitStack() as stack:
        for echo in echoes:
            await stack.enter_async_context(serving(echo))
        urls = {str(echo.accessible_at) for echo in echoes}
        await stack.enter_async_context(serving(caller))
        async with registry_on(port, warmup=0) as first:

            async def all_registered() -> bool:
                return set(await first.locate_service(name)) == urls

            await wait_until(all_registered, what="three instances")
            workers = [asyncio.create_task(load()) for _ in range(4)]
            await wait_until(_calls_reach(counts, urls), what="calls to every instance")
        # The registry is down: callers use what they know.
        await asyncio.sleep(0.3)
        async with registry_on(port, warmup=1.5) as second:
            counts.clear()

            async def back() -> bool:
                return set(await second.locate_service(name)) == urls

            await wait_until(back, timeout=10, what="every instance to re-register")
            during_warmup = dict(counts)
            counts.clear()
            await wait_until(_calls_reach(counts, urls, 30), what="calls after the warm-up")
        stop.set()
        await asyncio.gather(*workers)
    assert failures == []
    assert set(during_warmup) == urls, during_warmup
    total = sum(during_warmup.values())
    # No pile-up on the first instance back: each keeps about its third of the calls.
    assert min(during_warmup.values()) > total / 6, during_warmup


def _calls_reach(
    counts: collections.Counter[str], urls: set[str], each: int = 5
) -> Callable[[], Awaitable[bool]]:
    async def reached() -> bool:
        return all(counts[url] >= each for url in urls)

    return reached


async def test_an_instance_that_looks_up_re_registers_at_once() -> None:
    """A service that sees the registry's new run in a lookup pings it without waiting."""
    port = unused_port()
    registry_url = f"http://127.0.0.1:{port}/api"
    name = unique("slow-pinger")
    target = unique("target")

    class SlowPinger(gemstone.MicroService):
        service_registry_ping_interval = 60.0  # its next ping would come much later
        service_locate_cache_ttl = 0.05

    SlowPinger.name = name
    service = SlowPinger()
    service.service_registry_urls = [registry_url]
    async with serving(Echo()) as echo, serving(service):
        async with registry_on(port, warmup=0) as first:
            await first.ping(target, str(echo.accessible_at))

            async def registered() -> bool:
                return await first.locate_service(name) == [str(service.accessible_at)]

            await wait_until(registered, what="the first ping")
            await service.get_service(target)  # the strategy learns the registry's run
        async with registry_on(port, warmup=5) as second:
            await second.ping(target, str(echo.accessible_at))

            async def looked_up_and_back() -> bool:
                await service.get_service(target)
                return await second.locate_service(name) == [str(service.accessible_at)]

            await wait_until(looked_up_and_back, timeout=5, what="re-registration")


async def test_incomplete_answers_add_to_what_callers_knew() -> None:
    """While a registry warms up its answers do not replace the last known instances."""
    port = unused_port()
    name = unique("partial")
    async with serving(Echo()) as a, serving(Echo()) as b:
        caller = Caller()
        caller.service_registry_urls = [f"http://127.0.0.1:{port}/api"]
        try:
            async with registry_on(port, warmup=0) as first:
                await first.ping(name, str(a.accessible_at))
                await first.ping(name, str(b.accessible_at))
                await caller.get_service(name)
            async with registry_on(port, warmup=30) as second:
                await second.ping(name, str(b.accessible_at))
                strategy = caller.discovery.strategies[0]
                assert isinstance(strategy, HttpRegistryStrategy)
                found = await strategy.lookup(name)
                assert (found.urls, found.complete) == ([str(b.accessible_at)], False)
                await asyncio.sleep(0.15)  # past the caller's cache time
                handed = {(await caller.get_service(name)).url for _ in range(4)}
                assert handed == {a.accessible_at, b.accessible_at}
        finally:
            await caller.discovery.aclose()
